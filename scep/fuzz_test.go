package scep_test

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/scep"
)

// seedMessages returns real pkiMessages for the fuzz corpora: a PKCSReq in
// DER and in indefinite-length BER, with DES/SHA-1 (scepclient) and
// AES-256/OAEP/SHA-512, a RenewalReq, CertPoll, GetCert and GetCRL, an MD5
// one and a Windows-style signer, all encrypted to e's recipient.
func seedMessages(tb testing.TB, e *endpoint) [][]byte {
	tb.Helper()
	inter := e.f.ca.Intermediate()
	ias, err := scepclient.IssuerAndSerial(inter, big.NewInt(42))
	if err != nil {
		tb.Fatal(err)
	}
	rdn, err := asn1.Marshal(defaultSubject.ToRDNSequence())
	if err != nil {
		tb.Fatal(err)
	}
	iasub, err := scepclient.IssuerAndSubject(inter, rdn)
	if err != nil {
		tb.Fatal(err)
	}
	msgs := []*scepclient.Message{
		e.message(tb),
		e.message(tb, withParams(cms.Params{ContentEncryption: cms.DESCBC, KeyTransport: cms.RSAPKCS1v15}), withDigest(crypto.SHA1)),
		e.message(tb, withParams(cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA256}), withDigest(crypto.SHA512)),
		e.message(tb, withParams(cms.Params{ContentEncryption: cms.AES128GCM, KeyTransport: cms.RSAPKCS1v15})),
		e.message(tb, withType(scepclient.TypeRenewalReq), withChallenge("")),
		e.message(tb, withType(scepclient.TypeCertPoll), withContent(iasub)),
		e.message(tb, withType(scepclient.TypeGetCert), withContent(ias)),
		e.message(tb, withType(scepclient.TypeGetCRL), withContent(ias)),
		e.message(tb, withSignerOptions(testpki.WithCriticalAKI())),
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, marshal(tb, m))
	}
	out = append(out,
		testpki.Indefinite(tb, out[0]),
		signRaw(tb, e.message(tb), oidMD5, crypto.MD5),
		signRaw(tb, e.message(tb), oidSHA224, crypto.SHA224),
	)
	return out
}

// FuzzDecodeGETMessage checks that any query decodes without panicking, and
// that base64 of any bytes round-trips whether it is query-escaped, sent
// the macOS way ('=' escaped, '+' and '/' raw) or entirely raw.
func FuzzDecodeGETMessage(f *testing.F) {
	quirk := []byte{0x30, 0x82, 0xfb, 0xef, 0xff, 0x3e, 0x01} // "MIL77/8+AQ=="
	f.Add(quirk, "operation=PKIOperation&message=MIL77/8+AQ%3D%3D")
	f.Add(quirk, "operation=PKIOperation&message=MIL77%2F8%2BAQ%3D%3D")
	f.Add([]byte("hello"), "message=MIL77/8 AQ==")
	f.Add([]byte{0xfb, 0xff}, "message=%zz&message=+/+=")
	f.Add([]byte{}, "")
	f.Add([]byte{0}, "message=&message=AA")
	f.Add([]byte("\x30\x80\x00\x00"), "operation=PKIOperation&message=MIAAAA%0D%0A")
	f.Add([]byte("?"), ";message=Pw==")
	f.Fuzz(func(t *testing.T, data []byte, rawQuery string) {
		_, _ = scep.DecodeGETMessage(&url.URL{RawQuery: rawQuery}) // must not panic
		if len(data) == 0 {
			return
		}
		b64 := base64.StdEncoding.EncodeToString(data)
		for _, enc := range []struct{ name, value string }{
			{"query-escaped", url.QueryEscape(b64)},
			{"macOS", strings.ReplaceAll(b64, "=", "%3D")},
			{"raw", b64},
		} {
			q := "operation=PKIOperation&message=" + enc.value
			got, err := scep.DecodeGETMessage(&url.URL{RawQuery: q})
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("DecodeGETMessage(%s %q) = %x, %v, want %x", enc.name, q, got, err, data)
			}
		}
	})
}

// FuzzParsePKIMessage checks that parsing never panics, that every failure
// wraps ErrUnparsable, and that a parsed message has what a CertRep needs.
func FuzzParsePKIMessage(f *testing.F) {
	e := newEndpoint(f)
	for _, b := range seedMessages(f, e) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := scep.ParsePKIMessage(b)
		if err != nil {
			if !errors.Is(err, scep.ErrUnparsable) {
				t.Fatalf("ParsePKIMessage() = %v, want an error wrapping ErrUnparsable", err)
			}
			return
		}
		if msg.TransactionID == "" || len(msg.SenderNonce) == 0 || msg.SignerCert == nil {
			t.Fatalf("ParsePKIMessage() = tx %q, nonce %x, signer %v: want all set", msg.TransactionID, msg.SenderNonce, msg.SignerCert != nil)
		}
		_ = msg.MessageType.String()
		_ = msg.Verify()
	})
}

// FuzzPKIOperation drives Service.PKIOperation end to end with mutated
// messages: it never panics, fails only with ErrUnparsable (HTTP 400), and
// otherwise answers with a CertRep signed by the CA's recipient.
func FuzzPKIOperation(f *testing.F) {
	e := newEndpoint(f)
	for _, b := range seedMessages(f, e) {
		f.Add(b)
	}
	rcpt, _ := e.f.ca.Recipient()
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := e.f.svc.PKIOperation(t.Context(), e.integ, b)
		if err != nil {
			if !errors.Is(err, scep.ErrUnparsable) {
				t.Fatalf("PKIOperation() = %v, want nil or an error wrapping ErrUnparsable (anything else is HTTP 500)", err)
			}
			return
		}
		p7, err := pkcs7.Parse(out)
		if err != nil {
			t.Fatalf("PKIOperation() reply does not parse: %v", err)
		}
		if err := p7.Verify(); err != nil {
			t.Fatalf("PKIOperation() reply does not verify: %v", err)
		}
		if signer := p7.GetOnlySigner(); signer == nil || !bytes.Equal(signer.Raw, rcpt.Raw) {
			t.Fatalf("PKIOperation() reply not signed by the recipient certificate")
		}
		var mt asn1.RawValue
		if err := p7.UnmarshalSignedAttribute(oidMessageType, &mt); err != nil || string(mt.Bytes) != scepclient.TypeCertRep {
			t.Fatalf("PKIOperation() reply messageType = %q, %v, want CertRep", mt.Bytes, err)
		}
	})
}
