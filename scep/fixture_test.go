package scep_test

import (
	"bytes"
	"context"
	"crypto"
	_ "crypto/md5" // crypto.MD5 for the badAlg vector
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// maxBody is the request body cap cmd/scepca puts in front of the mux.
const maxBody = 2 << 20

const testPublicURL = "https://ca.example.com"

// testKEK is the key-encryption key of every test CA.
func testKEK(tb testing.TB) *ca.KEK {
	tb.Helper()
	k, err := ca.ParseKEK([]byte(strings.Repeat("42", 32)))
	if err != nil {
		tb.Fatalf("ParseKEK() = %v", err)
	}
	return k
}

// ca.Init generates RSA-2048 keys (slow under -race), so each key type is
// initialised once per test binary in a scratch store; every fixture copies
// the CA records into its own bbolt file and opens them with ca.Open.
var caRecords = map[string]func() ([]*store.CA, error){
	ca.KeyTypeRSA:   sync.OnceValues(func() ([]*store.CA, error) { return initCARecords(ca.KeyTypeRSA) }),
	ca.KeyTypeECDSA: sync.OnceValues(func() ([]*store.CA, error) { return initCARecords(ca.KeyTypeECDSA) }),
}

func initCARecords(keyType string) ([]*store.CA, error) {
	dir, err := os.MkdirTemp("", "scep-test-ca-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := bolt.Open(filepath.Join(dir, "ca.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	kek, err := ca.ParseKEK([]byte(strings.Repeat("42", 32)))
	if err != nil {
		return nil, err
	}
	// A shared, binary-wide setup outlives any one test, hence Background.
	ctx := context.Background()
	if _, err := ca.Init(ctx, st, kek, ca.Config{KeyType: keyType, PublicURL: testPublicURL}); err != nil {
		return nil, err
	}
	return st.ListCAs(ctx)
}

// fixture is one scepca SCEP server: a bbolt store in a temporary
// directory, a CA, the service and an httptest server around the mux.
type fixture struct {
	store     *bolt.DB
	ca        *ca.Authority
	svc       *scep.Service
	srv       *httptest.Server
	recipient *x509.Certificate
}

// endpoint is one integration of a fixture with its static secret and a
// SCEP client for its URL.
type endpoint struct {
	f      *fixture
	integ  *store.Integration
	secret string
	url    string
}

type fixtureConfig struct {
	keyType string
	integ   []func(*store.Integration)
	audit   func(*bolt.DB) *slog.Logger // the service's audit logger over the fixture's store
}

// fixtureOption overrides a default of newFixture / newEndpoint.
type fixtureOption func(*fixtureConfig)

// withECDSA makes the issuing CA ECDSA, with a separate RSA RA.
func withECDSA() fixtureOption {
	return func(c *fixtureConfig) { c.keyType = ca.KeyTypeECDSA }
}

// withIntegration edits the integration newEndpoint creates.
func withIntegration(edit func(*store.Integration)) fixtureOption {
	return func(c *fixtureConfig) { c.integ = append(c.integ, edit) }
}

func newFixture(tb testing.TB, opts ...fixtureOption) *fixture {
	tb.Helper()
	cfg := fixtureConfig{keyType: ca.KeyTypeRSA}
	for _, o := range opts {
		o(&cfg)
	}
	recs, err := caRecords[cfg.keyType]()
	if err != nil {
		tb.Fatalf("ca.Init(%s) = %v", cfg.keyType, err)
	}
	ctx := tb.Context()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "scepca.db"))
	if err != nil {
		tb.Fatalf("bolt.Open() = %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	for _, rec := range recs {
		c := *rec
		if err := st.CreateCA(ctx, &c); err != nil {
			tb.Fatalf("CreateCA(%s) = %v", rec.ID, err)
		}
	}
	authority, err := ca.Open(ctx, st, testKEK(tb), ca.Config{PublicURL: testPublicURL})
	if err != nil {
		tb.Fatalf("ca.Open() = %v", err)
	}
	svc, err := scep.NewService(scep.Config{
		CA:         authority,
		Store:      st,
		Validators: map[string]challenge.Validator{store.ChallengeStatic: challenge.Static{}},
		Audit:      auditFor(cfg, st),
	})
	if err != nil {
		tb.Fatalf("NewService() = %v", err)
	}
	mux := http.NewServeMux()
	scep.NewHandler(svc).Register(mux)
	srv := httptest.NewServer(reqlog.LimitBody(maxBody)(mux))
	tb.Cleanup(srv.Close)
	recipient, _ := authority.Recipient()
	return &fixture{store: st, ca: authority, svc: svc, srv: srv, recipient: recipient}
}

// newEndpoint returns a new fixture with one enabled static integration.
func newEndpoint(tb testing.TB, opts ...fixtureOption) *endpoint {
	tb.Helper()
	f := newFixture(tb, opts...)
	var cfg fixtureConfig
	for _, o := range opts {
		o(&cfg)
	}
	return f.addEndpoint(tb, cfg.integ...)
}

// addEndpoint stores a new enabled DESKTOP/STATIC integration (edited by
// edits) with a fresh secret.
func (f *fixture) addEndpoint(tb testing.TB, edits ...func(*store.Integration)) *endpoint {
	tb.Helper()
	secret, err := challenge.GenerateSecret(challenge.SecretLength)
	if err != nil {
		tb.Fatal(err)
	}
	hash, err := challenge.HashSecret(secret)
	if err != nil {
		tb.Fatal(err)
	}
	integ := &store.Integration{
		ID:            "int-" + randomHex(tb, 8),
		Name:          "test",
		Platform:      store.PlatformDesktop,
		ChallengeType: store.ChallengeStatic,
		Enabled:       true,
		SecretHash:    hash,
	}
	for _, edit := range edits {
		edit(integ)
	}
	if err := f.store.CreateIntegration(tb.Context(), integ); err != nil {
		tb.Fatalf("CreateIntegration() = %v", err)
	}
	return &endpoint{f: f, integ: integ, secret: secret.Reveal(), url: f.srv.URL + "/scep/" + integ.ID}
}

// client returns a SCEP client for the endpoint sending PKIOperation by
// method ("" = POST).
func (e *endpoint) client(method string) *scepclient.Client {
	return &scepclient.Client{URL: e.url, HTTP: e.f.srv.Client(), Method: method}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newTransactionID returns an ID shaped like scepclient's: std base64 of 20
// random bytes (so it holds '+', '/' and '=' now and then).
func newTransactionID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// testKey returns the n-th cached RSA-2048 test key.
func testKey(tb testing.TB, n int) *rsa.PrivateKey {
	tb.Helper()
	return testpki.RSAKeyN(tb, 2048, n)
}

// defaultSubject is the subject scepclient writes (PROTOCOLS.md §1.12).
var defaultSubject = pkix.Name{
	Country:            []string{"US"},
	Organization:       []string{"scep-client"},
	OrganizationalUnit: []string{"MDM"},
	CommonName:         "alice managementAttestation UDID123",
}

// reqConfig is a pkiMessage under construction: msg plus what its default
// CSR is made of. Zero fields get defaults in endpoint.message.
type reqConfig struct {
	msg        scepclient.Message
	csrKey     crypto.Signer
	subject    *pkix.Name
	challenge  *string
	csrOpts    []testpki.CSROption
	signerOpts []testpki.CertOption
}

// reqOption overrides a default of endpoint.message.
type reqOption func(*reqConfig)

func withType(typ string) reqOption { return func(c *reqConfig) { c.msg.Type = typ } }
func withTxID(id string) reqOption  { return func(c *reqConfig) { c.msg.TransactionID = id } }
func withParams(p cms.Params) reqOption {
	return func(c *reqConfig) { c.msg.Params = p }
}
func withDigest(h crypto.Hash) reqOption { return func(c *reqConfig) { c.msg.Digest = h } }

// withKey makes key sign the message and the CSR.
func withKey(key *rsa.PrivateKey) reqOption { return func(c *reqConfig) { c.msg.Key = key } }

// withCSRKey makes the CSR's key differ from the signer's.
func withCSRKey(key crypto.Signer) reqOption { return func(c *reqConfig) { c.csrKey = key } }

// withSigner signs the message with cert and key (a RenewalReq's old
// certificate, say) instead of a fresh self-signed certificate.
func withSigner(cert *x509.Certificate, key *rsa.PrivateKey) reqOption {
	return func(c *reqConfig) { c.msg.Signer, c.msg.Key = cert, key }
}

// withSignerOptions adjusts the default self-signed signer certificate.
func withSignerOptions(opts ...testpki.CertOption) reqOption {
	return func(c *reqConfig) { c.signerOpts = append(c.signerOpts, opts...) }
}

func withChallenge(s string) reqOption { return func(c *reqConfig) { c.challenge = &s } }
func withSubject(n pkix.Name) reqOption {
	return func(c *reqConfig) { c.subject = &n }
}
func withCSROptions(opts ...testpki.CSROption) reqOption {
	return func(c *reqConfig) { c.csrOpts = append(c.csrOpts, opts...) }
}

// withContent replaces the CSR as the enveloped content.
func withContent(b []byte) reqOption { return func(c *reqConfig) { c.msg.Content = b } }

// withRecipient encrypts the envelope to cert instead of the CA's recipient.
func withRecipient(cert *x509.Certificate) reqOption {
	return func(c *reqConfig) { c.msg.Recipient = cert }
}

// withEnvelope sends a ready-made envelope.
func withEnvelope(env []byte) reqOption { return func(c *reqConfig) { c.msg.Envelope = env } }

// defaultParams is AES-128-CBC with PKCS #1 v1.5 key transport, RFC 8894's
// mandatory-to-implement cipher.
var defaultParams = cms.Params{ContentEncryption: cms.AES128CBC, KeyTransport: cms.RSAPKCS1v15}

// message builds a request for e: by default a PKCSReq with a fresh
// transactionID and nonce, signed by a self-signed certificate for test key
// 0, carrying a CSR for the same key with e's secret, encrypted to the CA's
// recipient with defaultParams and signed with SHA-256.
func (e *endpoint) message(tb testing.TB, opts ...reqOption) *scepclient.Message {
	tb.Helper()
	var c reqConfig
	for _, o := range opts {
		o(&c)
	}
	m := &c.msg
	if m.Type == "" {
		m.Type = scepclient.TypePKCSReq
	}
	if m.TransactionID == "" {
		m.TransactionID = newTransactionID(tb)
	}
	if m.SenderNonce == nil {
		m.SenderNonce = make([]byte, 16)
		if _, err := rand.Read(m.SenderNonce); err != nil {
			tb.Fatal(err)
		}
	}
	if m.Key == nil {
		m.Key = testKey(tb, 0)
	}
	if m.Signer == nil {
		m.Signer = testpki.SelfSigned(tb, m.Key, "SCEP SIGNER", c.signerOpts...)
	}
	if m.Recipient == nil {
		m.Recipient = e.f.recipient
	}
	if m.Params == (cms.Params{}) {
		m.Params = defaultParams
	}
	if m.Digest == 0 {
		m.Digest = crypto.SHA256
	}
	if m.Content == nil && m.Envelope == nil {
		switch m.Type {
		case scepclient.TypePKCSReq, scepclient.TypeRenewalReq:
			key := c.csrKey
			if key == nil {
				key = m.Key
			}
			subject := defaultSubject
			if c.subject != nil {
				subject = *c.subject
			}
			ch := e.secret
			if c.challenge != nil {
				ch = *c.challenge
			}
			m.Content = testpki.CSR(tb, key, subject, ch, c.csrOpts...)
		default:
			tb.Fatalf("message(%s): no content given", m.Type)
		}
	}
	return m
}

// marshal returns the DER pkiMessage of m.
func marshal(tb testing.TB, m *scepclient.Message) []byte {
	tb.Helper()
	der, err := m.Marshal()
	if err != nil {
		tb.Fatalf("Message.Marshal() = %v", err)
	}
	return der
}

// do sends m by method ("" = POST) and returns the verified reply; it
// checks that the reply echoes transactionID and answers the senderNonce.
func (e *endpoint) do(tb testing.TB, m *scepclient.Message, method string) *scepclient.Reply {
	tb.Helper()
	return e.send(tb, m, marshal(tb, m), method)
}

// send posts (or GETs) raw as m's pkiMessage and checks the reply as do
// does.
func (e *endpoint) send(tb testing.TB, m *scepclient.Message, raw []byte, method string) *scepclient.Reply {
	tb.Helper()
	out, err := e.client(method).PKIOperation(tb.Context(), raw)
	if err != nil {
		tb.Fatalf("PKIOperation(%s) = %v", describe(m), err)
	}
	return checkReply(tb, m, out)
}

// checkReply parses a CertRep for m and checks the SCEP echo rules.
func checkReply(tb testing.TB, m *scepclient.Message, out []byte) *scepclient.Reply {
	tb.Helper()
	r, err := scepclient.ParseReply(out, m.Signer, m.Key)
	if err != nil {
		tb.Fatalf("ParseReply(PKIOperation(%s)) = %v", describe(m), err)
	}
	if r.TransactionID != m.TransactionID {
		tb.Errorf("PKIOperation(%s) transactionID = %q, want %q", describe(m), r.TransactionID, m.TransactionID)
	}
	if !bytes.Equal(r.RecipientNonce, m.SenderNonce) {
		tb.Errorf("PKIOperation(%s) recipientNonce = %x, want the senderNonce %x", describe(m), r.RecipientNonce, m.SenderNonce)
	}
	if len(r.SenderNonce) == 0 || bytes.Equal(r.SenderNonce, m.SenderNonce) {
		tb.Errorf("PKIOperation(%s) senderNonce = %x, want a fresh nonce", describe(m), r.SenderNonce)
	}
	return r
}

// describe names a request in failure messages.
func describe(m *scepclient.Message) string {
	return "type " + m.Type + " " + m.Params.String() + " tx " + m.TransactionID
}

// statusName spells a pkiStatus for messages.
func statusName(s string) string {
	switch s {
	case scepclient.StatusSuccess:
		return "SUCCESS"
	case scepclient.StatusFailure:
		return "FAILURE"
	case scepclient.StatusPending:
		return "PENDING"
	}
	return "status(" + s + ")"
}

func failName(f string) string {
	if f == "" {
		return "none"
	}
	return scep.FailInfo(f).String() + "(" + f + ")"
}

// wantSuccess fails unless r is SUCCESS with exactly one certificate, which
// it returns.
func wantSuccess(tb testing.TB, m *scepclient.Message, r *scepclient.Reply) *x509.Certificate {
	tb.Helper()
	if r.Status != scepclient.StatusSuccess {
		tb.Fatalf("PKIOperation(%s) = %s/%s, want SUCCESS", describe(m), statusName(r.Status), failName(r.FailInfo))
	}
	if len(r.Certificates) != 1 {
		tb.Fatalf("PKIOperation(%s) returned %d certificates, want 1", describe(m), len(r.Certificates))
	}
	return r.Certificates[0]
}

// wantFailure fails unless r is a FAILURE with failInfo want.
func wantFailure(tb testing.TB, m *scepclient.Message, r *scepclient.Reply, want scep.FailInfo) {
	tb.Helper()
	if r.Status != scepclient.StatusFailure || r.FailInfo != string(want) {
		tb.Errorf("PKIOperation(%s) = %s/%s, want FAILURE/%s", describe(m), statusName(r.Status), failName(r.FailInfo), failName(string(want)))
	}
	if r.Certificates != nil || r.CRLs != nil {
		tb.Errorf("PKIOperation(%s) FAILURE carries content", describe(m))
	}
}

// enroll runs a default PKCSReq (adjusted by opts) and returns the message
// and the issued certificate.
func (e *endpoint) enroll(tb testing.TB, opts ...reqOption) (*scepclient.Message, *x509.Certificate) {
	tb.Helper()
	m := e.message(tb, opts...)
	return m, wantSuccess(tb, m, e.do(tb, m, ""))
}

// httpGet performs a GET of e's URL with rawQuery (sent verbatim).
func (e *endpoint) httpGet(tb testing.TB, path, rawQuery string) (*http.Response, []byte) {
	tb.Helper()
	u := e.url + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return e.roundTrip(tb, req)
}

func (e *endpoint) roundTrip(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := e.f.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// OIDs for signRaw.
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidMessageType   = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidSenderNonce   = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidTransactionID = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
	oidMD5           = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	oidSHA224        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
)

// signRaw builds m as a CMS SignedData by hand with any digest (pkcs7 and
// scepclient only sign with SHA-1 and SHA-2 256/384/512): a well-formed,
// correctly signed pkiMessage whose only fault is its algorithm.
func signRaw(tb testing.TB, m *scepclient.Message, digestOID asn1.ObjectIdentifier, h crypto.Hash) []byte {
	tb.Helper()
	env := m.Envelope
	if env == nil {
		var err error
		if env, err = cms.Encrypt(m.Content, m.Recipient, m.Params); err != nil {
			tb.Fatalf("cms.Encrypt() = %v", err)
		}
	}
	hash := func(b []byte) []byte {
		d := h.New()
		d.Write(b)
		return d.Sum(nil)
	}
	attr := func(oid asn1.ObjectIdentifier, tag cbasn1.Tag, value []byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				if tag == cbasn1.OBJECT_IDENTIFIER {
					b.AddASN1ObjectIdentifier(oidData)
					return
				}
				b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(value) })
			})
		})
		return b.BytesOrPanic()
	}
	attrs := [][]byte{
		attr(oidContentType, cbasn1.OBJECT_IDENTIFIER, nil), // id-data
		attr(oidMessageDigest, cbasn1.OCTET_STRING, hash(env)),
		attr(oidMessageType, cbasn1.PrintableString, []byte(m.Type)),
		attr(oidTransactionID, cbasn1.PrintableString, []byte(m.TransactionID)),
		attr(oidSenderNonce, cbasn1.OCTET_STRING, m.SenderNonce),
	}
	slices.SortFunc(attrs, bytes.Compare) // DER SET OF order
	var set cryptobyte.Builder
	set.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	signed := set.BytesOrPanic()
	var signedContent cryptobyte.String
	if in := cryptobyte.String(signed); !in.ReadASN1(&signedContent, cbasn1.SET) {
		tb.Fatal("signRaw: cannot split the signed attributes")
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, m.Key, h, hash(signed))
	if err != nil {
		tb.Fatalf("rsa.SignPKCS1v15(%v) = %v", h, err)
	}
	algID := func(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1NULL()
		})
	}
	ctx0 := cbasn1.Tag(0).Constructed().ContextSpecific()
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(ctx0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { algID(b, digestOID) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidData)
					b.AddASN1(ctx0, func(b *cryptobyte.Builder) {
						b.AddASN1OctetString(env)
					})
				})
				b.AddASN1(ctx0, func(b *cryptobyte.Builder) { b.AddBytes(m.Signer.Raw) })
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(m.Signer.RawIssuer)
							b.AddASN1BigInt(m.Signer.SerialNumber)
						})
						algID(b, digestOID)
						b.AddASN1(ctx0, func(b *cryptobyte.Builder) { b.AddBytes(signedContent) })
						algID(b, oidRSAEncryption)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return out.BytesOrPanic()
}

// serialOf is the store key of cert.
func serialOf(cert *x509.Certificate) string {
	return ca.SerialString(cert.SerialNumber)
}

// storeFilter selects e's certificates.
func storeFilter(e *endpoint) store.CertFilter {
	return store.CertFilter{IntegrationID: e.integ.ID}
}

// revoke marks cert revoked in e's store.
func revoke(tb testing.TB, e *endpoint, cert *x509.Certificate) {
	tb.Helper()
	if err := e.f.store.UpdateCertificateStatus(tb.Context(), serialOf(cert), store.CertRevoked, time.Now(), 1); err != nil {
		tb.Fatalf("UpdateCertificateStatus(%s, REVOKED) = %v", serialOf(cert), err)
	}
}
