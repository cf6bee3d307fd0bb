package main

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/store"
)

// TestEtcdSnapshotRestore is the etcd backup of docs/operations.md, done as
// an operator does it: `etcdctl snapshot save` while scepca runs,
// `etcdctl snapshot restore` into a new member, scepca started on it with
// the same KEK. What was written before the snapshot is back (certificates,
// the device binding); what came after is not; enrollment goes on.
func TestEtcdSnapshotRestore(t *testing.T) {
	t.Parallel()
	srv := etcdtest.StartLocal(t, nil)
	prefix := "/scepca-restore-" + rand.Text() + "/"
	s := startServer(t, "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","), "--etcd-prefix", prefix)

	ids, err := loadgen.NewIdentities(t.Context(), 2, 2048)
	if err != nil {
		t.Fatal(err)
	}
	before := &received{certs: map[string][]byte{}, byTx: map[string]string{}}
	cc := newCrashClient(t, s, ids)
	enroll := func(cc *crashClient, n int, got *received) {
		t.Helper()
		m, err := cc.message(n)
		if err != nil {
			t.Fatal(err)
		}
		if status, err := cc.enroll(t.Context(), m, got); err != nil || status != scepclient.StatusSuccess {
			t.Fatalf("enroll %d: %q, %v", n, status, err)
		}
	}
	for i := range 3 {
		enroll(cc, i, before)
	}
	cert, key, _ := enrollECDSA(t, s, t.TempDir(), "dave managementAttestation RESTORED-1")
	dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, "RESTORED-1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "attest before the snapshot", dc, attest.ReasonManaged)

	snap := filepath.Join(t.TempDir(), "scepca.snapshot")
	srv.Snapshot(t, snap)
	after := &received{certs: map[string][]byte{}, byTx: map[string]string{}}
	enroll(cc, 100, after)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	srv.Kill() // the cluster is lost

	restored := etcdtest.Restore(t, snap)
	r := startServer(t, "--data", s.Data, "--store", "etcd", "--etcd-endpoints", strings.Join(restored.Endpoints, ","), "--etcd-prefix", prefix)
	st := (&replicas{etcd: restored, prefix: prefix}).store(t)
	checkStored(t, st, before)
	for serial := range after.certs {
		if _, err := st.GetCertificate(t.Context(), serial); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCertificate(%s), issued after the snapshot = %v, want %v", serial, err, store.ErrNotFound)
		}
	}
	dc, err = attestClient(r).AttestDesktop(t.Context(), key, cert, "RESTORED-1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "attest after the restore", dc, attest.ReasonManaged)
	dc, err = attestClient(r).AttestDesktop(t.Context(), key, cert, "OTHER-DEVICE", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "the restored binding, from another device", dc, attest.ReasonCertBoundToOther)
	enroll(newCrashClient(t, r, ids), 200, before)
}
