package main

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
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
	before := newReceived()
	cc := newCrashClient(t, s, ids)
	enroll := func(cc *crashClient, n int, got *received) {
		t.Helper()
		if err := cc.enrollNth(t.Context(), n, got); err != nil {
			t.Fatal(err)
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
	after := newReceived()
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

	// On etcd, the API has no backup: an etcd snapshot is the backup.
	resp := r.API(t, http.MethodGet, "/api/v1/backup", nil)
	if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /api/v1/backup on etcd = %d %s, want 501 with a problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestBoltHotBackupRestore is the bbolt backup of docs/operations.md: GET
// /api/v1/backup while the server runs and enrolls, the file put in place
// as <data>/scepca.db of a new data directory with the same KEK, and the
// server started on it.
func TestBoltHotBackupRestore(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ids, err := loadgen.NewIdentities(t.Context(), 2, 2048)
	if err != nil {
		t.Fatal(err)
	}
	before := newReceived()
	cc := newCrashClient(t, s, ids)
	enroll := func(cc *crashClient, n int, got *received) {
		t.Helper()
		if err := cc.enrollNth(t.Context(), n, got); err != nil {
			t.Error(err) // also from the goroutine that enrolls during the backup
		}
	}
	for i := range 3 {
		enroll(cc, i, before)
	}
	cert, key, _ := enrollECDSA(t, s, t.TempDir(), "erin managementAttestation BACKED-UP-1")
	dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, "BACKED-UP-1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "attest before the backup", dc, attest.ReasonManaged)

	// Enrollments go on while the backup streams.
	var wg sync.WaitGroup
	during := newReceived()
	wg.Go(func() {
		for i := range 4 {
			enroll(cc, 50+i, during)
		}
	})
	resp := s.API(t, http.MethodGet, "/api/v1/backup", nil)
	backup, err := io.ReadAll(resp.Body)
	wg.Wait()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.Header.Get("Content-Length") != strconv.Itoa(len(backup)) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET /api/v1/backup = %d %v, %d bytes, %v", resp.StatusCode, resp.Header, len(backup), err)
	}
	after := newReceived()
	enroll(cc, 100, after)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// Restore: a new data directory with the KEK, the admin token and the
	// dev integration's file, and the backup as scepca.db.
	data := t.TempDir()
	for _, f := range []string{"kek", "admin-token", "dev-integration.json"} {
		b, err := os.ReadFile(filepath.Join(s.Data, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "scepca.db"), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServer(t, "--data", data)
	dc, err = attestClient(r).AttestDesktop(t.Context(), key, cert, "BACKED-UP-1", attest.PlatformMacOS, "")
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
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(data, "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStored(t, db, before)
	for serial := range after.certs {
		if _, err := db.GetCertificate(t.Context(), serial); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCertificate(%s), issued after the backup = %v, want %v", serial, err, store.ErrNotFound)
		}
	}
}
