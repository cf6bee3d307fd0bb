package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
)

// DefaultParams are the envelope algorithms of the prepared requests:
// AES-128-CBC with RSA PKCS #1 v1.5 key transport, the RFC 8894 §2.9
// mandatory cipher with the key transport every client and micromdm's
// scepserver accept.
var DefaultParams = cms.Params{ContentEncryption: cms.AES128CBC, KeyTransport: cms.RSAPKCS1v15}

// Target is a SCEP endpoint under load.
type Target struct {
	// Name labels the results, e.g. "scepca" or "scepserver".
	Name string
	// URL is the SCEP URL (GetCACert and PKIOperation go there).
	URL string
	// Challenge goes into every CSR's challengePassword.
	Challenge string
	// HTTP sends the requests; NewHTTPClient when nil.
	HTTP *http.Client
	// Params are the envelope algorithms; DefaultParams when zero.
	Params cms.Params
	// CPU, when set, reads the server process's CPU time, so that results
	// carry the server's CPU per enrollment.
	CPU CPUFunc
	// InProcess says the server runs in this process: its CPU then
	// includes the load generator's, and no client CPU is reported apart.
	InProcess bool
	// Baseline marks a server measured for comparison only: its failed
	// enrollments are reported, not held against the run (see Report.Err).
	Baseline bool
}

func (t Target) client() *scepclient.Client {
	h := t.HTTP
	if h == nil {
		h = NewHTTPClient(64)
	}
	return &scepclient.Client{URL: t.URL, HTTP: h}
}

func (t Target) params() cms.Params {
	if t.Params == (cms.Params{}) {
		return DefaultParams
	}
	return t.Params
}

// NewHTTPClient returns a client that keeps up to conns idle connections
// to one host, so that a concurrency level up to conns reuses its
// connections instead of dialling per request (the default keeps two).
func NewHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// Request is one prepared PKCSReq: its own transaction and subject, signed
// and enveloped before the timed phase.
type Request struct {
	TransactionID string
	CommonName    string
	Identity      *Identity
	SenderNonce   []byte
	// Body is the DER pkiMessage, POSTed as is.
	Body []byte
}

// Prepare fetches the target's CA certificate and builds n PKCSReq
// messages, spread round-robin over ids. Each is a distinct transaction (a
// random transactionID) for a distinct subject (CN "<prefix>-<i>
// managementAttestation UDID-<prefix>-<i>"), because scepserver refuses a
// second certificate for a known DN (PROTOCOLS.md §1.12): prefix must be
// unique per server and run. Messages are built on every core.
func Prepare(ctx context.Context, t Target, ids []Identity, n int, prefix string) ([]*Request, error) {
	if len(ids) == 0 {
		return nil, errors.New("loadgen: prepare: no identities")
	}
	certs, _, err := t.client().GetCACert(ctx)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", t.Name, err)
	}
	recipient := scepclient.Recipient(certs)
	if recipient == nil {
		return nil, fmt.Errorf("loadgen: %s: GetCACert returned no certificate", t.Name)
	}
	reqs := make([]*Request, n)
	err = forEach(ctx, n, func(i int) (err error) {
		reqs[i], err = prepareOne(t, &ids[i%len(ids)], recipient, fmt.Sprintf("%s-%d", prefix, i))
		return err
	})
	if ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: prepare %s: %w", t.Name, err)
	}
	return reqs, nil
}

func prepareOne(t Target, id *Identity, recipient *x509.Certificate, name string) (*Request, error) {
	r := &Request{
		TransactionID: randomHex(16),
		CommonName:    name + " managementAttestation UDID-" + name,
		Identity:      id,
		SenderNonce:   make([]byte, 16),
	}
	if _, err := rand.Read(r.SenderNonce); err != nil {
		return nil, err
	}
	csr, err := scepclient.CSR(id.Key, pkix.Name{CommonName: r.CommonName}, t.Challenge)
	if err != nil {
		return nil, err
	}
	m := &scepclient.Message{
		Type:          scepclient.TypePKCSReq,
		TransactionID: r.TransactionID,
		SenderNonce:   r.SenderNonce,
		Signer:        id.Cert,
		Key:           id.Key,
		Recipient:     recipient,
		Content:       csr,
		Params:        t.params(),
	}
	if r.Body, err = m.Marshal(); err != nil {
		return nil, err
	}
	return r, nil
}

// randomHex returns n random bytes, hex-encoded (PrintableString-safe).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// RunID returns a short random identifier that makes subjects unique per
// run, e.g. "3fa9c2".
func RunID() string { return randomHex(3) }
