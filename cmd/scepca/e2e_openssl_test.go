package main

// Envelopes made by `openssl cms -encrypt`, an independent CMS
// implementation, wrapped into pkiMessages by internal/scepclient and sent
// to a running server (PROTOCOLS.md §1.6, §5 items 6 and 7); OpenSSL also
// opens our CertRep envelopes. DES-CBC is left out: OpenSSL 3 keeps it in
// the legacy provider (internal/cms covers it in-process).

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
)

var opensslDigestOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1:   {1, 3, 14, 3, 2, 26},
	crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
	crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
}

// opensslFixture holds the files openssl reads: the SCEP recipient
// certificate, a CSR with the challenge, and the requester's throwaway
// signer certificate and key (which the CertRep is encrypted to).
type opensslFixture struct {
	bin       string
	scepURL   string
	recipient string // PEM path
	csr       string // DER path
	signerPEM string
	keyPEM    string
	signer    *x509.Certificate
	key       *rsa.PrivateKey
}

func newOpenSSLFixture(t *testing.T, s *testServer) *opensslFixture {
	t.Helper()
	dir := t.TempDir()
	f := &opensslFixture{
		bin:       lookClient(t, "openssl"),
		scepURL:   s.SCEPURL,
		recipient: filepath.Join(dir, "recipient.pem"),
		csr:       filepath.Join(dir, "csr.der"),
		signerPEM: filepath.Join(dir, "self.pem"),
		keyPEM:    filepath.Join(dir, "key.pem"),
		key:       testpki.NewRSAKey(t, 2048),
	}
	certs, _ := getCACert(t, s.SCEPURL)
	writePEMFile(t, f.recipient, "CERTIFICATE", scepclient.Recipient(certs).Raw)
	csr, err := scepclient.CSR(f.key, pkix.Name{CommonName: "openssl envelope"}, s.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.csr, csr, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = scepclient.SelfSigned(f.key, "SCEP SIGNER"); err != nil {
		t.Fatal(err)
	}
	writePEMFile(t, f.signerPEM, "CERTIFICATE", f.signer.Raw)
	writeKeyFile(t, f.keyPEM, f.key)
	return f
}

// encrypt runs `openssl cms -encrypt` over the CSR and returns the
// envelope (a ContentInfo, DER unless -stream).
func (f *opensslFixture) encrypt(t *testing.T, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "envelope.der")
	// -keyopt applies to the -recip before it.
	full := append([]string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", f.csr, "-out", out, "-recip", f.recipient}, args...)
	if o, code := runClient(t, dir, f.bin, full...); code != 0 {
		t.Fatalf("openssl(%v) = exit %d, want 0\n%s", args, code, o)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// message wraps an envelope into a PKCSReq with a fresh transaction.
func (f *opensslFixture) message(t *testing.T, env []byte, digest crypto.Hash) *scepclient.Message {
	t.Helper()
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return &scepclient.Message{
		Type: scepclient.TypePKCSReq, TransactionID: randomTransactionID(t), SenderNonce: nonce,
		Signer: f.signer, Key: f.key, Envelope: env, Digest: digest,
	}
}

// send posts (or GETs) raw pkiMessage bytes for m and returns the raw
// CertRep and its parsed form, which must answer m and be SUCCESS.
func (f *opensslFixture) send(t *testing.T, method string, m *scepclient.Message, raw []byte) ([]byte, *scepclient.Reply) {
	t.Helper()
	out, err := (&scepclient.Client{URL: f.scepURL, Method: method}).PKIOperation(t.Context(), raw)
	if err != nil {
		t.Fatalf("PKIOperation(%s) = %v", method, err)
	}
	r, err := scepclient.ParseReply(out, m.Signer, m.Key)
	if err != nil {
		t.Fatalf("ParseReply(%s) = %v", method, err)
	}
	if r.TransactionID != m.TransactionID || !bytes.Equal(r.RecipientNonce, m.SenderNonce) {
		t.Errorf("CertRep(%s) answers transaction %q nonce %x, want %q %x", method, r.TransactionID, r.RecipientNonce, m.TransactionID, m.SenderNonce)
	}
	if r.Status != scepclient.StatusSuccess || len(r.Certificates) != 1 {
		t.Fatalf("CertRep(%s) = status %s failInfo %s with %d certificates, want SUCCESS with one", method, r.Status, r.FailInfo, len(r.Certificates))
	}
	if !f.key.PublicKey.Equal(r.Certificates[0].PublicKey) {
		t.Errorf("CertRep(%s) certificate is not for the CSR's key", method)
	}
	return out, r
}

// decryptReply opens a CertRep's envelope with `openssl cms -decrypt` and
// returns the certificates of the degenerate SignedData inside.
func (f *opensslFixture) decryptReply(t *testing.T, certRep []byte) []*x509.Certificate {
	t.Helper()
	p7, err := pkcs7.Parse(certRep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "reply-envelope.der"), filepath.Join(dir, "inner.der")
	if err := os.WriteFile(in, p7.Content, 0o600); err != nil {
		t.Fatal(err)
	}
	if o, code := runClient(t, dir, f.bin, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in, "-out", out, "-recip", f.signerPEM, "-inkey", f.keyPEM); code != 0 {
		t.Fatalf("openssl(cms -decrypt CertRep) = exit %d, want 0\n%s", code, o)
	}
	inner, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.Parse(inner)
	if err != nil {
		t.Fatalf("openssl-decrypted CertRep content: %v", err)
	}
	return sd.Certificates
}

// TestOpenSSLEnvelopes is PROTOCOLS.md §5 item 6: every cipher × key
// transport OpenSSL 3 writes by default decrypts, by POST and by GET, and
// the CertRep mirrors cipher, key transport and digest; OpenSSL decrypts
// each reply.
func TestOpenSSLEnvelopes(t *testing.T) {
	t.Parallel()
	lookClient(t, "openssl")
	s := startServer(t)
	f := newOpenSSLFixture(t, s)
	ciphers := []struct {
		flag string
		want cms.ContentEncryption
	}{
		{"-des3", cms.DESEDE3CBC},
		{"-aes128", cms.AES128CBC},
		{"-aes256", cms.AES256CBC},
	}
	transports := []struct {
		name    string
		keyopts []string
		want    cms.Params
	}{
		{"rsaEncryption", nil, cms.Params{KeyTransport: cms.RSAPKCS1v15}},
		{"OAEP", []string{"-keyopt", "rsa_padding_mode:oaep"}, cms.Params{KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA1}},
		{"OAEP-SHA256", []string{"-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"}, cms.Params{KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA256}},
	}
	digests := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512}
	n := 0
	for _, c := range ciphers {
		for _, k := range transports {
			digest := digests[n%len(digests)]
			n++
			want := k.want
			want.ContentEncryption = c.want
			t.Run(c.flag[1:]+"/"+k.name+"/"+digest.String(), func(t *testing.T) {
				t.Parallel()
				env := f.encrypt(t, append([]string{c.flag}, k.keyopts...)...)
				for _, method := range []string{http.MethodPost, http.MethodGet} {
					m := f.message(t, env, digest)
					raw, err := m.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					certRep, r := f.send(t, method, m, raw)
					if r.EnvelopeParams != want {
						t.Errorf("CertRep(%s) envelope = %v, want %v (mirrored)", method, r.EnvelopeParams, want)
					}
					if !r.DigestOID.Equal(opensslDigestOIDs[digest]) {
						t.Errorf("CertRep(%s) digest = %v, want %v (mirrored)", method, r.DigestOID, opensslDigestOIDs[digest])
					}
					if method == http.MethodPost {
						got := f.decryptReply(t, certRep)
						if len(got) != 1 || !got[0].Equal(r.Certificates[0]) {
							t.Errorf("openssl(cms -decrypt CertRep) = %d certificates, want the issued one", len(got))
						}
					}
				}
			})
		}
	}
}

// TestOpenSSLBER is PROTOCOLS.md §5 item 7: indefinite-length BER, as
// Apple sends it, in the envelope (openssl cms -stream) and in the outer
// pkiMessage (re-encoded by testpki.Indefinite).
func TestOpenSSLBER(t *testing.T) {
	t.Parallel()
	lookClient(t, "openssl")
	s := startServer(t)
	f := newOpenSSLFixture(t, s)
	indefinite := func(b []byte) bool { return len(b) > 2 && b[0] == 0x30 && b[1] == 0x80 }

	t.Run("envelope from -stream", func(t *testing.T) {
		t.Parallel()
		env := f.encrypt(t, "-aes128", "-stream")
		if !indefinite(env) {
			t.Fatalf("openssl cms -stream wrote % x..., want an indefinite-length SEQUENCE", env[:4])
		}
		m := f.message(t, env, crypto.SHA256)
		raw, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, r := f.send(t, http.MethodPost, m, raw)
		if want := (cms.Params{ContentEncryption: cms.AES128CBC, KeyTransport: cms.RSAPKCS1v15}); r.EnvelopeParams != want {
			t.Errorf("CertRep envelope = %v, want %v", r.EnvelopeParams, want)
		}
	})

	t.Run("indefinite pkiMessage", func(t *testing.T) {
		t.Parallel()
		m := f.message(t, f.encrypt(t, "-aes256"), crypto.SHA256)
		der, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ber := testpki.Indefinite(t, der)
		if !indefinite(ber) || bytes.Equal(ber, der) {
			t.Fatal("testpki.Indefinite did not re-encode the pkiMessage")
		}
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			m.TransactionID = randomTransactionID(t)
			if der, err = m.Marshal(); err != nil {
				t.Fatal(err)
			}
			f.send(t, method, m, testpki.Indefinite(t, der))
		}
	})
}
