package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scepca/scepca/store"
)

// verifies reports whether cert chains to a's root through inter.
func verifies(t *testing.T, a *Authority, inter, cert *x509.Certificate) bool {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(a.Root())
	inters.AddCert(inter)
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

func TestRotateActivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		from, to     string
		wantNextType string
	}{
		{name: "rsa keeps rsa", from: KeyTypeRSA, wantNextType: KeyTypeRSA},
		{name: "ecdsa keeps ecdsa", from: KeyTypeECDSA, wantNextType: KeyTypeECDSA},
		{name: "rsa to ecdsa", from: KeyTypeRSA, to: KeyTypeECDSA, wantNextType: KeyTypeECDSA},
		{name: "ecdsa to rsa", from: KeyTypeECDSA, to: KeyTypeRSA, wantNextType: KeyTypeRSA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var audit syncBuffer
			st := newMemStore()
			cfg := testConfig(t, tc.from)
			cfg.Logger = newJSONLogger(&audit)
			a, err := Init(ctx, st, testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init() = %v", err)
			}
			replica, err := Open(ctx, st, testKEK(t), testConfig(t, ""))
			if err != nil {
				t.Fatalf("Open() = %v", err)
			}
			oldID, oldInter := a.IntermediateID(), a.Intermediate()
			oldRecipient, _ := a.Recipient()
			cert1, _ := issue(t, a, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 1), "alice", "D1")})
			if got := a.Next(); got != nil {
				t.Fatalf("Next() before Rotate = %d certificates, want none", len(got))
			}

			rec, err := a.Rotate(ctx, RotateOptions{KeyType: tc.to, Actor: "test"})
			if err != nil {
				t.Fatalf("Rotate() = %v", err)
			}
			if rec.State != store.CAStateNext || rec.Active || rec.Role != store.RoleIntermediate {
				t.Errorf("Rotate() record state %q active %v role %q, want NEXT, false, INTERMEDIATE", rec.State, rec.Active, rec.Role)
			}
			next := a.Next()
			if len(next) == 0 || next[0].Subject.String() != rec.Subject {
				t.Fatalf("Next() after Rotate = %v, want the new intermediate first", next)
			}
			if got, want := next[0].Subject.CommonName, "scepca Intermediate Authority G2"; got != want {
				t.Errorf("next intermediate CN = %q, want %q", got, want)
			}
			if !issuedBy(next[0], a.Root()) || !next[0].IsCA || next[0].MaxPathLen != 0 {
				t.Errorf("next intermediate is not a path-length-0 CA issued by the root")
			}
			_, isECDSA := next[0].PublicKey.(*ecdsa.PublicKey)
			if isECDSA != (tc.wantNextType == KeyTypeECDSA) {
				t.Errorf("next intermediate key %T, want %s", next[0].PublicKey, tc.wantNextType)
			}
			if wantRA := tc.wantNextType == KeyTypeECDSA; (len(next) == 2) != wantRA {
				t.Fatalf("Next() = %d certificates, want RA %v", len(next), wantRA)
			}
			if len(next) == 2 {
				if _, ok := next[1].PublicKey.(*rsa.PublicKey); !ok || !issuedBy(next[1], next[0]) || CheckRecipient(next[1]) != nil {
					t.Errorf("next RA is not an RSA recipient issued by the next intermediate")
				}
			}
			if a.IntermediateID() != oldID {
				t.Errorf("IntermediateID() after Rotate = %s, want the old %s until Activate", a.IntermediateID(), oldID)
			}
			if _, err := a.Rotate(ctx, RotateOptions{}); !errors.Is(err, ErrLifecycle) {
				t.Errorf("Rotate() with a staged successor = %v, want %v", err, ErrLifecycle)
			}
			if err := a.DeleteIntermediate(ctx, oldID, true, "test"); !errors.Is(err, ErrLifecycle) {
				t.Errorf("DeleteIntermediate(active) = %v, want %v", err, ErrLifecycle)
			}
			if _, err := a.Activate(ctx, oldID, "test"); !errors.Is(err, ErrLifecycle) {
				t.Errorf("Activate(active) = %v, want %v", err, ErrLifecycle)
			}
			if _, err := a.Activate(ctx, "no-such-ca", "test"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Activate(unknown) = %v, want %v", err, store.ErrNotFound)
			}
			if err := replica.Reload(ctx); err != nil {
				t.Fatalf("replica Reload() = %v", err)
			}
			if len(replica.Next()) != len(next) {
				t.Errorf("replica Next() after Reload = %d certificates, want %d", len(replica.Next()), len(next))
			}

			// A request prepared before the activation issues from the old CA.
			inFlight, err := a.Prepare(ctx, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 2), "bob", "D2")})
			if err != nil {
				t.Fatalf("Prepare() = %v", err)
			}
			activated, err := a.Activate(ctx, rec.ID, "test")
			if err != nil {
				t.Fatalf("Activate() = %v", err)
			}
			if activated.ID != rec.ID || activated.State != store.CAStateActive || !activated.Active {
				t.Errorf("Activate() = %s %q active %v, want %s ACTIVE", activated.ID, activated.State, activated.Active, rec.ID)
			}
			certOld, recOld, err := a.Issue(ctx, inFlight)
			if err != nil {
				t.Fatalf("Issue(prepared before Activate) = %v", err)
			}
			if recOld.CAID != oldID || !issuedBy(certOld, oldInter) {
				t.Errorf("Issue(prepared before Activate) CAID = %s, want the old %s", recOld.CAID, oldID)
			}

			if a.IntermediateID() != rec.ID || !a.Intermediate().Equal(next[0]) || a.Next() != nil {
				t.Fatalf("after Activate: IntermediateID() = %s, Next() = %v; want %s and none", a.IntermediateID(), a.Next(), rec.ID)
			}
			if rcpt, _ := a.Recipient(); !rcpt.Equal(next[len(next)-1]) {
				t.Errorf("Recipient() after Activate = %q, want the successor's", rcpt.Subject)
			}
			if rs := a.Recipients(); len(rs) != 2 || !rs[0].Cert.Equal(next[len(next)-1]) || !rs[1].Cert.Equal(oldRecipient) || rs[1].Key == nil {
				t.Errorf("Recipients() after Activate = %d, want the successor's then the retired one's with its key", len(rs))
			}
			cert2, rec2 := issue(t, a, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 3), "carol", "D3")})
			if rec2.CAID != rec.ID || !verifies(t, a, next[0], cert2) {
				t.Errorf("issued after Activate: CAID %s, want %s and a chain to the root", rec2.CAID, rec.ID)
			}
			if want := testPublicURL + "/crl/" + rec.ID + ".crl"; len(cert2.CRLDistributionPoints) != 1 || cert2.CRLDistributionPoints[0] != want {
				t.Errorf("CRL distribution point = %v, want %s", cert2.CRLDistributionPoints, want)
			}
			for _, c := range []*x509.Certificate{cert1, certOld, cert2} {
				if !a.Trusts(c) {
					t.Errorf("Trusts(%q) after Activate = false, want true", c.Subject.CommonName)
				}
			}
			for _, id := range []string{oldID, rec.ID} {
				if _, key, ok := a.Issuer(id); !ok || key == nil {
					t.Errorf("Issuer(%s) after Activate = false, want its key", id)
				}
			}
			old, err := st.GetCA(ctx, oldID)
			if err != nil {
				t.Fatalf("GetCA(old) = %v", err)
			}
			if old.State != store.CAStateRetired || old.Active {
				t.Errorf("old intermediate state %q active %v, want RETIRED, false", old.State, old.Active)
			}

			// The other replica still issues from the old CA until it reloads.
			if replica.IntermediateID() != oldID {
				t.Errorf("replica IntermediateID() before Reload = %s, want %s", replica.IntermediateID(), oldID)
			}
			if err := replica.Reload(ctx); err != nil {
				t.Fatalf("replica Reload() = %v", err)
			}
			if replica.IntermediateID() != rec.ID || !replica.Trusts(cert1) || !replica.Trusts(cert2) {
				t.Errorf("replica after Reload: IntermediateID() = %s, want %s, trusting both generations", replica.IntermediateID(), rec.ID)
			}

			// Retired with valid certificates: deleting needs force.
			if err := a.DeleteIntermediate(ctx, oldID, false, "test"); !errors.Is(err, ErrLifecycle) {
				t.Errorf("DeleteIntermediate(retired, not forced) = %v, want %v", err, ErrLifecycle)
			}
			if err := a.DeleteIntermediate(ctx, oldID, true, "test"); err != nil {
				t.Fatalf("DeleteIntermediate(retired, forced) = %v", err)
			}
			if a.Trusts(cert1) {
				t.Errorf("Trusts(old certificate) after deleting its CA = true, want false")
			}
			if _, _, ok := a.Issuer(oldID); ok {
				t.Errorf("Issuer(deleted) = true, want false")
			}
			if rs := a.Recipients(); len(rs) != 1 {
				t.Errorf("Recipients() after deleting the retired CA = %d, want 1", len(rs))
			}
			cas, _ := st.ListCAs(ctx)
			for _, c := range cas {
				if c.Role == store.RoleRA && c.Lifecycle() == store.CAStateRetired {
					t.Errorf("RA %s of the deleted intermediate is still stored", c.ID)
				}
			}
			if err := a.DeleteIntermediate(ctx, oldID, true, "test"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("DeleteIntermediate(deleted) = %v, want %v", err, store.ErrNotFound)
			}
			for _, ev := range []string{EventRotate, EventActivate, EventDelete} {
				if !strings.Contains(audit.String(), `"msg":"`+ev+`"`) {
					t.Errorf("audit log lacks %s:\n%s", ev, audit.String())
				}
			}
		})
	}
}

func TestRotateRootKeyOffline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, _ := newTestAuthority(t, KeyTypeRSA)
	exported, err := a.ExportRootKey(ctx)
	if err != nil {
		t.Fatalf("ExportRootKey() = %v", err)
	}
	if err := a.RemoveRootKey(ctx); err != nil {
		t.Fatalf("RemoveRootKey() = %v", err)
	}
	other, _ := newTestAuthority(t, KeyTypeECDSA)
	otherKey, err := other.ExportRootKey(ctx)
	if err != nil {
		t.Fatalf("ExportRootKey(other) = %v", err)
	}
	der, _ := pem.Decode(exported)
	tests := []struct {
		name    string
		key     []byte
		wantErr error
	}{
		{name: "no key", wantErr: ErrRootKeyRemoved},
		{name: "garbage", key: []byte("not a key"), wantErr: ErrBadRootKey},
		{name: "certificate", key: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Root().Raw}), wantErr: ErrBadRootKey},
		{name: "truncated key", key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der.Bytes[:40]}), wantErr: ErrBadRootKey},
		{name: "another root's key", key: otherKey, wantErr: ErrBadRootKey},
		{name: "the exported key", key: exported},
	}
	for _, tc := range tests { // sequential: the last one stages a successor
		_, err := a.Rotate(ctx, RotateOptions{RootKeyPEM: tc.key})
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("Rotate(%s) = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	if len(a.Next()) != 1 || !issuedBy(a.Next()[0], a.Root()) {
		t.Errorf("Next() after Rotate with the supplied key = %v, want one intermediate under the root", a.Next())
	}
	if _, err := a.Rotate(ctx, RotateOptions{KeyType: "dsa"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Rotate(key type dsa) = %v, want %v", err, ErrBadRequest)
	}
}

func TestDeleteStagedSuccessor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, st := newTestAuthority(t, KeyTypeECDSA)
	rec, err := a.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	before, _ := st.ListCAs(ctx)
	if err := a.DeleteIntermediate(ctx, rec.ID, false, "test"); err != nil {
		t.Fatalf("DeleteIntermediate(next) = %v", err)
	}
	after, _ := st.ListCAs(ctx)
	if len(before)-len(after) != 2 || a.Next() != nil {
		t.Errorf("DeleteIntermediate(next) removed %d records, Next() = %v; want the intermediate and its RA, none", len(before)-len(after), a.Next())
	}
	if err := a.DeleteIntermediate(ctx, a.RootID(), true, "test"); !errors.Is(err, ErrLifecycle) {
		t.Errorf("DeleteIntermediate(root) = %v, want %v", err, ErrLifecycle)
	}
	// A new rotation is possible again and takes the next free generation.
	rec2, err := a.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate() after deleting the staged one = %v", err)
	}
	if !strings.Contains(rec2.Subject, "CN=scepca Intermediate Authority G2,") {
		t.Errorf("Rotate() subject = %q, want generation G2", rec2.Subject)
	}
}

// An activation interrupted after the successor became ACTIVE but before
// the old intermediate was marked RETIRED opens as completed: the newest
// active intermediate issues, the older one is retired.
func TestOpenAfterInterruptedActivation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, st := newTestAuthority(t, KeyTypeRSA)
	oldID := a.IntermediateID()
	cert1, _ := issue(t, a, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 1), "alice", "D1")})
	rec, err := a.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	u := *rec
	u.Active, u.State = true, store.CAStateActive
	u.CreatedAt = rec.CreatedAt.Add(1) // newer than the old one in any case
	if err := st.UpdateCA(ctx, &u); err != nil {
		t.Fatalf("UpdateCA() = %v", err)
	}
	b, err := Open(ctx, st, testKEK(t), testConfig(t, ""))
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	if b.IntermediateID() != rec.ID {
		t.Errorf("IntermediateID() = %s, want the newer %s", b.IntermediateID(), rec.ID)
	}
	if _, _, ok := b.Issuer(oldID); !ok || !b.Trusts(cert1) {
		t.Errorf("the older active intermediate is not kept as retired")
	}
	// Rotation goes on: the next Activate retires both older ones.
	rec3, err := b.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if _, err := b.Activate(ctx, rec3.ID, "test"); err != nil {
		t.Fatalf("Activate() = %v", err)
	}
	for _, id := range []string{oldID, rec.ID} {
		if r, _ := st.GetCA(ctx, id); r.Lifecycle() != store.CAStateRetired {
			t.Errorf("%s state = %s, want RETIRED", id, r.Lifecycle())
		}
	}
}

func TestReloadUnchangedKeepsSnapshot(t *testing.T) {
	t.Parallel()
	a, _ := newTestAuthority(t, KeyTypeRSA)
	before := a.snap()
	if err := a.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if a.snap() != before {
		t.Errorf("Reload() of unchanged records built a new snapshot")
	}
}

// TestRunPicksUpAnotherReplica: a replica sharing the store issues from the
// successor another replica activated within one reload interval (a
// synctest bubble: no wall-clock waits).
func TestRunPicksUpAnotherReplica(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, st := newTestAuthority(t, KeyTypeRSA)
		cfg := testConfig(t, "")
		cfg.ReloadInterval = time.Minute
		b, err := Open(t.Context(), st, testKEK(t), cfg)
		if err != nil {
			t.Fatalf("Open() = %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()

		oldID := a.IntermediateID()
		rec, err := a.Rotate(ctx, RotateOptions{})
		if err != nil {
			t.Fatalf("Rotate() = %v", err)
		}
		if _, err := a.Activate(ctx, rec.ID, "test"); err != nil {
			t.Fatalf("Activate() = %v", err)
		}
		<-time.After(59 * time.Second) // fake time
		synctest.Wait()
		if b.IntermediateID() != oldID {
			t.Errorf("replica IntermediateID() before the interval = %s, want %s", b.IntermediateID(), oldID)
		}
		<-time.After(2 * time.Second)
		synctest.Wait()
		if b.IntermediateID() != rec.ID {
			t.Errorf("replica IntermediateID() after the interval = %s, want %s", b.IntermediateID(), rec.ID)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
	})
}
