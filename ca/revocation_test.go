package ca

import (
	"crypto"
	"crypto/x509"
	"errors"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// testClock is a settable clock for revocation tests.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}
func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// revocationFixture is an authority over a real bbolt file, a Revocation
// on it, and three issued certificates.
type revocationFixture struct {
	a     *Authority
	db    *bolt.DB
	r     *Revocation
	clock *testClock
	certs []*x509.Certificate
	recs  []*store.Certificate
}

func newRevocationFixture(t testing.TB, keyType string) *revocationFixture {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := Init(t.Context(), db, testKEK(t), testConfig(t, keyType))
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	f := &revocationFixture{a: a, db: db, clock: newTestClock(testNow)}
	f.r, err = NewRevocation(RevocationConfig{Issuers: a, Store: db, Now: f.clock.now})
	if err != nil {
		t.Fatalf("NewRevocation() = %v", err)
	}
	key := cachedRSAKey(t, 2048, 1)
	for _, user := range []string{"alice", "bob", "carol"} {
		cert, rec := issue(t, a, &Request{CSR: oktaCSR(t, key, user, "DEV"), IntegrationID: "i1"})
		f.certs, f.recs = append(f.certs, cert), append(f.recs, rec)
	}
	return f
}

func (f *revocationFixture) setStatus(t *testing.T, i int, status string, reason int) {
	t.Helper()
	at := f.clock.now()
	if status == store.CertIssued {
		at = time.Time{}
	}
	if err := f.db.UpdateCertificateStatus(t.Context(), f.recs[i].Serial, status, at, reason); err != nil {
		t.Fatal(err)
	}
}

// crlReasons fetches the CRL, checks its signature and returns its
// entries as serial → reason.
func (f *revocationFixture) crlReasons(t *testing.T) (*CRL, map[string]int) {
	t.Helper()
	c, err := f.r.CRL(t.Context(), f.a.IntermediateID())
	if err != nil {
		t.Fatalf("CRL() = %v", err)
	}
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatalf("ParseRevocationList() = %v", err)
	}
	if err := rl.CheckSignatureFrom(f.a.Intermediate()); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	if rl.Number.Cmp(c.Number) != 0 || !rl.ThisUpdate.Equal(c.ThisUpdate.Truncate(time.Second)) || !rl.NextUpdate.After(rl.ThisUpdate) {
		t.Errorf("CRL number %v thisUpdate %v nextUpdate %v, want %v, %v and later", rl.Number, rl.ThisUpdate, rl.NextUpdate, c.Number, c.ThisUpdate)
	}
	got := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		got[SerialString(new(big.Int).Set(e.SerialNumber))] = e.ReasonCode
	}
	return c, got
}

func wantReasons(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: CRL entries %v, want %v", what, got, want)
		return
	}
	for s, r := range want {
		if g, ok := got[s]; !ok || g != r {
			t.Errorf("%s: CRL entries %v, want %v", what, got, want)
			return
		}
	}
}

func TestRevocationCRLCache(t *testing.T) {
	t.Parallel()
	f := newRevocationFixture(t, KeyTypeRSA)
	first, got := f.crlReasons(t)
	wantReasons(t, "empty", got, map[string]int{})

	// A change in the store without Changed (another replica) is not seen
	// before the refresh interval ...
	f.setStatus(t, 0, store.CertRevoked, 1)
	c, got := f.crlReasons(t)
	wantReasons(t, "before refresh", got, map[string]int{})
	if c.ETag != first.ETag {
		t.Errorf("cached CRL ETag %s, want %s", c.ETag, first.ETag)
	}
	// ... and is after it.
	f.clock.add(DefaultCRLRefresh)
	c, got = f.crlReasons(t)
	wantReasons(t, "after refresh", got, map[string]int{f.recs[0].Serial: 1})
	if c.Number.Cmp(first.Number) <= 0 || c.ETag == first.ETag {
		t.Errorf("regenerated CRL number %v ETag %s, want > %v and not %s", c.Number, c.ETag, first.Number, first.ETag)
	}

	// A change in this process shows at once; holds carry certificateHold.
	f.setStatus(t, 1, store.CertOnHold, 0)
	f.r.Changed()
	held, got := f.crlReasons(t)
	wantReasons(t, "after Changed", got, map[string]int{f.recs[0].Serial: 1, f.recs[1].Serial: reasonCertificateHold})

	// Refreshing without a change keeps the signed CRL (same ETag) ...
	f.clock.add(DefaultCRLRefresh)
	f.r.Changed()
	c, _ = f.crlReasons(t)
	if c.ETag != held.ETag || c.Number.Cmp(held.Number) != 0 {
		t.Errorf("unchanged CRL re-signed: number %v, want %v", c.Number, held.Number)
	}
	// ... until half its validity has passed.
	f.clock.add(crlResign)
	c, got = f.crlReasons(t)
	wantReasons(t, "re-signed", got, map[string]int{f.recs[0].Serial: 1, f.recs[1].Serial: reasonCertificateHold})
	if c.Number.Cmp(held.Number) <= 0 || !c.NextUpdate.After(held.NextUpdate) {
		t.Errorf("CRL after %v: number %v nextUpdate %v, want a new one", crlResign, c.Number, c.NextUpdate)
	}

	// Lifting the hold removes the entry.
	f.setStatus(t, 1, store.CertIssued, 0)
	f.r.Changed()
	_, got = f.crlReasons(t)
	wantReasons(t, "hold lifted", got, map[string]int{f.recs[0].Serial: 1})

	// An entry stays until one CRL validity after the certificate expired.
	f.clock.set(f.recs[0].NotAfter.Add(crlValidity))
	_, got = f.crlReasons(t)
	wantReasons(t, "just expired", got, map[string]int{f.recs[0].Serial: 1})
	f.clock.add(time.Second)
	f.r.Changed()
	_, got = f.crlReasons(t)
	wantReasons(t, "long expired", got, map[string]int{})
}

func TestRevocationCRLConcurrent(t *testing.T) {
	t.Parallel()
	f := newRevocationFixture(t, KeyTypeECDSA)
	f.setStatus(t, 2, store.CertRevoked, 4)
	var wg sync.WaitGroup
	etags := make([]string, 8)
	for i := range etags {
		wg.Go(func() {
			c, err := f.r.CRL(t.Context(), f.a.IntermediateID())
			if err != nil {
				t.Errorf("CRL() = %v", err)
				return
			}
			etags[i] = c.ETag
		})
	}
	wg.Wait()
	for _, e := range etags {
		if e != etags[0] {
			t.Errorf("concurrent CRL() ETags %v, want one CRL signed once", etags)
			break
		}
	}
	_, got := f.crlReasons(t)
	wantReasons(t, "ecdsa", got, map[string]int{f.recs[2].Serial: 4})
}

func TestRevocationErrors(t *testing.T) {
	t.Parallel()
	f := newRevocationFixture(t, KeyTypeRSA)
	if _, err := f.r.CRL(t.Context(), "nope"); !errors.Is(err, ErrUnknownCA) {
		t.Errorf("CRL(unknown) = %v, want ErrUnknownCA", err)
	}
	if _, err := f.r.CRL(t.Context(), f.a.RootID()); !errors.Is(err, ErrUnknownCA) {
		t.Errorf("CRL(root) = %v, want ErrUnknownCA", err)
	}
	for _, tc := range []struct {
		name string
		cfg  RevocationConfig
	}{
		{"no issuers", RevocationConfig{Store: f.db}},
		{"no store", RevocationConfig{Issuers: f.a}},
		{"refresh too short", RevocationConfig{Issuers: f.a, Store: f.db, Refresh: time.Millisecond}},
		{"refresh too long", RevocationConfig{Issuers: f.a, Store: f.db, Refresh: 2 * time.Hour}},
	} {
		if _, err := NewRevocation(tc.cfg); err == nil {
			t.Errorf("NewRevocation(%s) = nil error, want one", tc.name)
		}
	}
}

func TestRevocationOCSP(t *testing.T) {
	t.Parallel()
	for _, keyType := range []string{KeyTypeRSA, KeyTypeECDSA} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			f := newRevocationFixture(t, keyType)
			f.setStatus(t, 0, store.CertRevoked, ocsp.KeyCompromise)
			f.setStatus(t, 1, store.CertOnHold, 0)
			inter := f.a.Intermediate()
			ask := func(cert *x509.Certificate, h crypto.Hash) *ocsp.Response {
				t.Helper()
				req, err := ocsp.CreateRequest(cert, inter, &ocsp.RequestOptions{Hash: h})
				if err != nil {
					t.Fatal(err)
				}
				der, err := f.r.OCSP(t.Context(), req)
				if err != nil {
					t.Fatalf("OCSP(%s) = %v", SerialString(cert.SerialNumber), err)
				}
				resp, err := ocsp.ParseResponseForCert(der, cert, inter)
				if err != nil {
					t.Fatalf("ParseResponseForCert() = %v", err)
				}
				return resp
			}
			for _, tc := range []struct {
				name   string
				cert   *x509.Certificate
				status int
				reason int
			}{
				{"revoked", f.certs[0], ocsp.Revoked, ocsp.KeyCompromise},
				{"held", f.certs[1], ocsp.Revoked, ocsp.CertificateHold},
				{"good", f.certs[2], ocsp.Good, 0},
			} {
				for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
					resp := ask(tc.cert, h)
					if resp.Status != tc.status || resp.RevocationReason != tc.reason || resp.SerialNumber.Cmp(tc.cert.SerialNumber) != 0 {
						t.Errorf("OCSP(%s, %v) = status %d reason %d, want %d %d", tc.name, h, resp.Status, resp.RevocationReason, tc.status, tc.reason)
					}
					if tc.status == ocsp.Revoked && !resp.RevokedAt.Equal(testNow) {
						t.Errorf("OCSP(%s) revokedAt %v, want %v", tc.name, resp.RevokedAt, testNow)
					}
					if !resp.ThisUpdate.Equal(testNow) || !resp.NextUpdate.After(resp.ThisUpdate) {
						t.Errorf("OCSP(%s) thisUpdate %v nextUpdate %v", tc.name, resp.ThisUpdate, resp.NextUpdate)
					}
				}
			}

			// A serial we never issued is unknown.
			never := *f.certs[2]
			never.SerialNumber = big.NewInt(12345)
			if resp := ask(&never, crypto.SHA1); resp.Status != ocsp.Unknown {
				t.Errorf("OCSP(never issued) = status %d, want unknown", resp.Status)
			}

			// Lifting the hold is seen at once (no cache).
			f.setStatus(t, 1, store.CertIssued, 0)
			if resp := ask(f.certs[1], crypto.SHA1); resp.Status != ocsp.Good {
				t.Errorf("OCSP(hold lifted) = status %d, want good", resp.Status)
			}
		})
	}
}

func TestRevocationOCSPErrors(t *testing.T) {
	t.Parallel()
	f := newRevocationFixture(t, KeyTypeRSA)
	other := newRevocationFixture(t, KeyTypeECDSA) // RSA test CAs share cached keys and names
	foreign, err := ocsp.CreateRequest(other.certs[0], other.a.Intermediate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ocsp.CreateRequest(f.certs[0], f.a.Intermediate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		req     []byte
		want    []byte
		wantErr error
	}{
		{"empty", nil, ocsp.MalformedRequestErrorResponse, ErrOCSPMalformed},
		{"garbage", []byte("not DER"), ocsp.MalformedRequestErrorResponse, ErrOCSPMalformed},
		{"truncated", good[:len(good)-3], ocsp.MalformedRequestErrorResponse, ErrOCSPMalformed},
		{"trailing data", append(append([]byte{}, good...), 0), ocsp.MalformedRequestErrorResponse, ErrOCSPMalformed},
		{"another CA", foreign, ocsp.UnauthorizedErrorResponse, ErrOCSPUnauthorized},
	} {
		got, err := f.r.OCSP(t.Context(), tc.req)
		if !errors.Is(err, tc.wantErr) || string(got) != string(tc.want) {
			t.Errorf("OCSP(%s) = %x, %v, want %x, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzOCSP: any bytes get an OCSP answer (never a panic); those that do
// not parse get malformedRequest.
func FuzzOCSP(f *testing.F) {
	fx := newRevocationFixture(f, KeyTypeRSA)
	req, err := ocsp.CreateRequest(fx.certs[0], fx.a.Intermediate(), &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req)
	f.Add([]byte{})
	f.Add(ocsp.MalformedRequestErrorResponse)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := fx.r.OCSP(t.Context(), b)
		if len(resp) == 0 {
			t.Fatalf("OCSP(%x) = no answer, %v", b, err)
		}
		if _, perr := ocsp.ParseRequest(b); perr != nil && !errors.Is(err, ErrOCSPMalformed) {
			t.Fatalf("OCSP(%x) = %v for an unparsable request, want ErrOCSPMalformed", b, err)
		}
	})
}

// TestRevocationAcrossRotation: after a rotation each intermediate, the
// retired one included, has its own CRL and answers OCSP for its own
// certificates, signed with its own key.
func TestRevocationAcrossRotation(t *testing.T) {
	t.Parallel()
	f := newRevocationFixture(t, KeyTypeRSA)
	ctx := t.Context()
	oldID, oldCA := f.a.IntermediateID(), f.a.Intermediate()
	f.setStatus(t, 0, store.CertRevoked, ocsp.KeyCompromise)
	next, err := f.a.Rotate(ctx, RotateOptions{Actor: "test"})
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if _, err := f.a.Activate(ctx, next.ID, "test"); err != nil {
		t.Fatalf("Activate() = %v", err)
	}
	newCA := f.a.Intermediate()
	if f.a.IntermediateID() != next.ID || newCA.Equal(oldCA) {
		t.Fatalf("after Activate the intermediate is %s, want %s", f.a.IntermediateID(), next.ID)
	}
	newCert, newRec := issue(t, f.a, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 1), "dora", "DEV"), IntegrationID: "i1"})
	if err := f.db.UpdateCertificateStatus(ctx, newRec.Serial, store.CertRevoked, testNow, ocsp.Superseded); err != nil {
		t.Fatal(err)
	}
	f.r.Changed()

	for _, tc := range []struct {
		id     string
		issuer *x509.Certificate
		want   map[string]int
	}{
		{oldID, oldCA, map[string]int{f.recs[0].Serial: ocsp.KeyCompromise}},
		{next.ID, newCA, map[string]int{newRec.Serial: ocsp.Superseded}},
	} {
		c, err := f.r.CRL(ctx, tc.id)
		if err != nil {
			t.Fatalf("CRL(%s) = %v", tc.id, err)
		}
		rl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(tc.issuer); err != nil {
			t.Errorf("CRL(%s) signature: %v", tc.id, err)
		}
		got := map[string]int{}
		for _, e := range rl.RevokedCertificateEntries {
			got[SerialString(e.SerialNumber)] = e.ReasonCode
		}
		wantReasons(t, "CRL "+tc.id, got, tc.want)
	}

	for _, tc := range []struct {
		name         string
		cert, issuer *x509.Certificate
		status       int
	}{
		{"old certificate, old CA", f.certs[0], oldCA, ocsp.Revoked},
		{"good old certificate, old CA", f.certs[1], oldCA, ocsp.Good},
		{"new certificate, new CA", newCert, newCA, ocsp.Revoked},
		{"old certificate, new CA", f.certs[1], newCA, ocsp.Unknown},
	} {
		req, err := ocsp.CreateRequest(tc.cert, tc.issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		der, err := f.r.OCSP(ctx, req)
		if err != nil {
			t.Fatalf("OCSP(%s) = %v", tc.name, err)
		}
		resp, err := ocsp.ParseResponse(der, tc.issuer)
		if err != nil {
			t.Fatalf("OCSP(%s): ParseResponse() = %v", tc.name, err)
		}
		if resp.Status != tc.status {
			t.Errorf("OCSP(%s) = status %d, want %d", tc.name, resp.Status, tc.status)
		}
	}
}
