package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/ndesclient"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// runMigrate runs `scepca store migrate` and returns its output.
func runMigrate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), append([]string{"store", "migrate"}, args...), testEnv(), &out, &errOut)
	return out.String() + errOut.String(), err
}

// TestStoreMigrateBoltToEtcd: a server's bbolt store (CA, integrations,
// certificates, transactions, an unused dynamic challenge, a device with
// its binding) moves to etcd with `scepca store migrate`, and a server on
// etcd carries on from it: the challenge fetched before still works once,
// the binding still holds, enrollment goes on. Then back to a new bbolt
// file, and the refusals.
func TestStoreMigrateBoltToEtcd(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	prefix := "/scepca-migrate-" + rand.Text() + "/"
	ep := strings.Join(srv.Endpoints, ",")

	// A bbolt server with some of everything.
	s := startServer(t)
	ids, err := loadgen.NewIdentities(t.Context(), 4, 2048)
	if err != nil {
		t.Fatal(err)
	}
	got := newReceived()
	cc := newCrashClient(t, s, ids)
	for i := range 5 {
		if err := cc.enrollNth(t.Context(), i, got); err != nil {
			t.Fatal(err)
		}
	}
	dyn := createDynamic(t, s, "")
	challenge, err := ndesclient.Fetch(t.Context(), nil, dyn.ChallengeURL, dyn.Username, dyn.Password)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, _ := enrollECDSA(t, s, t.TempDir(), "bob managementAttestation MIGRATED-1")
	ac := attestClient(s)
	dc, err := ac.AttestDesktop(t.Context(), key, cert, "MIGRATED-1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "attest before the migration", dc, attest.ReasonManaged)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// Audit events and API tokens, which no server writes yet, travel too.
	now := time.Now().UTC() // recent, or the server's retention sweep removes them
	events := []*store.Event{
		{ID: fmt.Sprintf("%016x-seed-a", now.UnixNano()), Time: now, Type: "certificate.issue", Actor: "system", Outcome: store.OutcomeSuccess},
		{ID: fmt.Sprintf("%016x-seed-b", now.UnixNano()+1), Time: now, Type: "device.lifecycle.suspend", Actor: "token:t1", Outcome: store.OutcomeSuccess},
	}
	func() {
		db, err := bolt.Open(filepath.Join(s.Data, "scepca.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.AppendEvents(t.Context(), events); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateToken(t.Context(), &store.APIToken{ID: "t1", Name: "ci", Scope: store.ScopeVerify, Hash: []byte("h")}); err != nil {
			t.Fatal(err)
		}
	}()

	from := "bolt:" + filepath.Join(s.Data, "scepca.db")
	to := "etcd:" + ep
	out, err := runMigrate(t, "--from", from, "--to", to, "--etcd-prefix", prefix)
	if err != nil {
		t.Fatalf("store migrate = %v\n%s", err, out)
	}
	for _, want := range []string{"certificates", "devices", "bindings", "onetime", "transactions", "events", "tokens", "counts and checksums match"} {
		if !strings.Contains(out, want) {
			t.Errorf("store migrate printed\n%s\nwant %q in it", out, want)
		}
	}
	// Again: every record is there with the same value, so it is a no-op.
	if out, err := runMigrate(t, "--from", from, "--to", to, "--etcd-prefix", prefix); err != nil {
		t.Fatalf("store migrate again = %v\n%s", err, out)
	}

	// A server on etcd with the same data directory (KEK, admin token, dev
	// integration) carries on.
	e := startServer(t, "--data", s.Data, "--store", "etcd", "--etcd-endpoints", ep, "--etcd-prefix", prefix)
	dc, err = attestClient(e).AttestDesktop(t.Context(), key, cert, "MIGRATED-1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "attest after the migration", dc, attest.ReasonManaged)
	dc, err = attestClient(e).AttestDesktop(t.Context(), key, cert, "ANOTHER-DEVICE", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "the migrated certificate from another device", dc, attest.ReasonCertBoundToOther)

	certs, _ := getCACert(t, e.SCEPURL)
	rsaKey := testpki.RSAKeyN(t, 2048, 0)
	csr, err := scepclient.CSR(rsaKey, pkix.Name{CommonName: "carol managementAttestation MIGRATED-2"}, challenge)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := scepclient.SelfSigned(rsaKey, "SCEP SIGNER")
	if err != nil {
		t.Fatal(err)
	}
	dynURL := strings.Replace(dyn.SCEPURL, s.URL, e.URL, 1)
	for i, want := range []string{scepclient.StatusSuccess, scepclient.StatusFailure} {
		r, err := (&scepclient.Client{URL: dynURL}).Do(t.Context(), &scepclient.Message{
			Type: scepclient.TypePKCSReq, TransactionID: []string{"migrated-challenge-1", "migrated-challenge-2"}[i],
			Signer: signer, Key: rsaKey, Recipient: scepclient.Recipient(certs), Content: csr,
			Params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
		})
		if err != nil || r.Status != want {
			t.Errorf("enrollment %d with the challenge fetched before the migration = %+v, %v, want %s", i+1, r, err, want)
		}
	}
	cc = newCrashClient(t, e, ids)
	if err := cc.enrollNth(t.Context(), 100, got); err != nil {
		t.Errorf("enroll on etcd after the migration: %v", err)
	}
	est := (&replicas{etcd: srv, prefix: prefix}).store(t)
	checkStored(t, est, got)
	evs, err := est.ListEvents(t.Context(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range evs {
		seen[e.ID] = true
		if i > 0 && evs[i-1].ID <= e.ID {
			t.Errorf("ListEvents after the migration: %s before %s, want newest first", evs[i-1].ID, e.ID)
		}
	}
	if !seen[events[0].ID] || !seen[events[1].ID] || len(evs) < 3 {
		t.Errorf("ListEvents after the migration = %d events, want the server's and both seeded ones", len(evs))
	}
	if tok, err := est.GetToken(t.Context(), "t1"); err != nil || tok.Scope != store.ScopeVerify {
		t.Errorf("GetToken after the migration = %+v, %v", tok, err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}

	// Now the destination has moved on (a binding used since, a new
	// certificate): refused.
	out, err = runMigrate(t, "--from", from, "--to", to, "--etcd-prefix", prefix)
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("store migrate into a prefix that moved on = %v\n%s, want %v", err, out, store.ErrExists)
	}
	// Into an empty prefix beside another deployment: fine, the prefix
	// keeps them apart. A record added there since is found by the checks.
	other := strings.TrimSuffix(prefix, "/") + "-copy/"
	if out, err := runMigrate(t, "--from", from, "--to", to, "--etcd-prefix", other); err != nil {
		t.Errorf("store migrate into a fresh prefix = %v\n%s", err, out)
	}
	extra := &store.Certificate{Serial: "E1", CAID: "ca", Status: store.CertIssued, IssuedAt: time.Now()}
	if err := (&replicas{etcd: srv, prefix: other}).store(t).PutCertificate(t.Context(), extra); err != nil {
		t.Fatal(err)
	}
	out, err = runMigrate(t, "--from", from, "--to", to, "--etcd-prefix", other)
	if err == nil || !strings.Contains(err.Error(), "destination differs from source") || !strings.Contains(err.Error(), "certificates:") {
		t.Errorf("store migrate into a prefix with an extra certificate = %v\n%s, want a count and checksum mismatch", err, out)
	}

	// And back into a new bbolt file: everything the etcd server wrote too.
	back := filepath.Join(t.TempDir(), "back.db")
	if out, err := runMigrate(t, "--from", to, "--to", "bolt:"+back, "--etcd-prefix", prefix); err != nil {
		t.Fatalf("store migrate etcd to bolt = %v\n%s", err, out)
	}
	db, err := bolt.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStored(t, db, got)
	if _, err := db.GetBinding(t.Context(), strings.ToUpper(sha256Hex(cert))); err != nil {
		t.Errorf("GetBinding after migrating back = %v", err)
	}
	if n, err := db.CountOneTime(t.Context(), store.KindChallenge, dyn.ID, time.Now()); err != nil || n != 0 {
		t.Errorf("CountOneTime(challenges) after migrating back = %d, %v, want 0 unused", n, err)
	}

	for _, tc := range []struct{ name, from, to string }{
		{"missing source", "bolt:" + filepath.Join(t.TempDir(), "none.db"), "bolt:" + filepath.Join(t.TempDir(), "x.db")},
		{"bad spec", "mysql:x", to},
		{"same", to, to},
		{"no endpoints", from, "etcd:"},
	} {
		if out, err := runMigrate(t, "--from", tc.from, "--to", tc.to, "--etcd-prefix", prefix); err == nil {
			t.Errorf("store migrate %s = nil\n%s, want an error", tc.name, out)
		}
	}
}
