package bolt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
	"github.com/scepca/scepca/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "scepca.db"))
	})
}

// open opens path and closes it when the test ends.
func open(t *testing.T, path string, opts ...bolt.Option) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return db
}

func TestOpenFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "scepca.db")
	db := open(t, path)
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode&^0o600 != 0 {
		t.Errorf("Open(%q) created mode %v, want at most 0600", path, mode)
	}
}

// TestOpenLocked: the file lock is exclusive, and a second Open fails after
// the lock timeout instead of waiting forever.
func TestOpenLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "scepca.db")
	open(t, path)

	tests := []struct {
		name string
		opts []bolt.Option
	}{
		{"default timeout", nil},
		{"short timeout", []bolt.Option{bolt.WithLockTimeout(10 * time.Millisecond)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			go func() {
				db, err := bolt.Open(path, tc.opts...)
				if err == nil {
					_ = db.Close() // Open should not have succeeded
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, bberrors.ErrTimeout) {
					t.Errorf("Open(%q) while open = %v, want %v", path, err, bberrors.ErrTimeout)
				}
			case <-time.After(30 * time.Second): // a watchdog, not a wait: Open returns in about a second
				t.Fatalf("Open(%q) while open has not returned after 30s, want %v", path, bberrors.ErrTimeout)
			}
		})
	}
}

func TestOpenInvalidLockTimeout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "scepca.db")
	db, err := bolt.Open(path, bolt.WithLockTimeout(0))
	if err == nil {
		_ = db.Close()
		t.Errorf("Open(%q, WithLockTimeout(0)) = nil, want an error (bbolt would wait forever)", path)
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "scepca.db")
	at := time.Date(2035, time.March, 1, 12, 0, 0, 0, time.UTC)
	want := &store.Certificate{
		Serial: "1A", CAID: "ca-1", IntegrationID: "int-1", Subject: "CN=device",
		NotBefore: at, NotAfter: at.Add(time.Hour), IssuedAt: at,
		PublicKeyHash: []byte("spki-hash"), DER: []byte("der"), Status: store.CertIssued,
	}
	nonce := &store.OneTime{Key: "n", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}

	db, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	if err := db.PutCertificate(ctx, want); err != nil {
		t.Fatalf("PutCertificate(%q) = %v, want nil", want.Serial, err)
	}
	if err := db.PutOneTime(ctx, store.KindNonce, nonce); err != nil {
		t.Fatalf("PutOneTime(%q, %q) = %v, want nil", store.KindNonce, nonce.Key, err)
	}
	if _, err := db.ConsumeOneTime(ctx, store.KindNonce, nonce.Key, at); err != nil {
		t.Fatalf("ConsumeOneTime(%q, %q) = %v, want nil", store.KindNonce, nonce.Key, err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	db = open(t, path)
	got, err := db.GetCertificate(ctx, want.Serial)
	if err != nil {
		t.Fatalf("GetCertificate(%q) after reopen = %v, want nil", want.Serial, err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GetCertificate(%q) after reopen mismatch (-want +got):\n%s", want.Serial, d)
	}
	// Consumed stays consumed across a restart.
	if _, err := db.ConsumeOneTime(ctx, store.KindNonce, nonce.Key, at); !errors.Is(err, store.ErrUsed) {
		t.Errorf("ConsumeOneTime(%q, %q) after reopen = %v, want %v", store.KindNonce, nonce.Key, err, store.ErrUsed)
	}
	if err := db.PutCertificate(ctx, want); !errors.Is(err, store.ErrExists) {
		t.Errorf("PutCertificate(%q) after reopen = %v, want %v", want.Serial, err, store.ErrExists)
	}
}

func TestBackup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, filepath.Join(dir, "scepca.db"))
	in := &store.Integration{ID: "int-1", Name: "laptops", Platform: store.PlatformDesktop, Enabled: true}
	if err := db.CreateIntegration(ctx, in); err != nil {
		t.Fatalf("CreateIntegration(%q) = %v, want nil", in.ID, err)
	}

	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup() = %d, %v, want %d, nil", n, err, buf.Len())
	}
	// The live DB keeps working after the backup.
	if err := db.CreateIntegration(ctx, &store.Integration{ID: "int-2"}); err != nil {
		t.Fatalf("CreateIntegration(%q) after Backup = %v, want nil", "int-2", err)
	}

	path := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := open(t, path)
	got, err := restored.ListIntegrations(ctx)
	if err != nil {
		t.Fatalf("ListIntegrations() on the backup = %v, want nil", err)
	}
	if d := cmp.Diff([]*store.Integration{in}, got); d != "" {
		t.Errorf("ListIntegrations() on the backup mismatch (-want +got):\n%s", d)
	}
}

// TestListCertificatesNewestFirst pins this backend's documented order.
func TestListCertificatesNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "scepca.db"))
	at := time.Date(2035, time.March, 1, 12, 0, 0, 0, time.UTC)
	issued := map[string]time.Time{
		"0A":  at.Add(time.Hour),
		"FF":  at,
		"100": at.Add(2 * time.Hour),
		"01":  at.Add(time.Hour), // same time as 0A: ties by serial, descending
		"02":  {},                // the zero time sorts oldest
	}
	for serial, issuedAt := range issued {
		c := &store.Certificate{Serial: serial, IssuedAt: issuedAt, Status: store.CertIssued}
		if err := db.PutCertificate(ctx, c); err != nil {
			t.Fatalf("PutCertificate(%q) = %v, want nil", serial, err)
		}
	}
	tests := []struct {
		name   string
		filter store.CertFilter
		want   []string
	}{
		{"all", store.CertFilter{}, []string{"100", "0A", "01", "FF", "02"}},
		{"limit", store.CertFilter{Limit: 2}, []string{"100", "0A"}},
	}
	for _, tc := range tests {
		got, err := db.ListCertificates(ctx, tc.filter)
		if err != nil {
			t.Fatalf("ListCertificates(%+v) = %v, want nil", tc.filter, err)
		}
		var serials []string
		for _, c := range got {
			serials = append(serials, c.Serial)
		}
		if d := cmp.Diff(tc.want, serials); d != "" {
			t.Errorf("ListCertificates(%+v) order mismatch (-want +got):\n%s", tc.filter, d)
		}
	}
}

// TestErrorsNameNoOneTimeKey: one-time keys derive from secrets, and errors
// get logged.
func TestErrorsNameNoOneTimeKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "scepca.db"))
	const key = "hash-of-a-challenge-password"
	v := &store.OneTime{Key: key, ExpiresAt: time.Date(2035, time.March, 1, 12, 0, 0, 0, time.UTC)}
	if err := db.PutOneTime(ctx, store.KindChallenge, v); err != nil {
		t.Fatalf("PutOneTime(%q) = %v, want nil", store.KindChallenge, err)
	}
	now := v.ExpiresAt.Add(-time.Second)
	if _, err := db.ConsumeOneTime(ctx, store.KindChallenge, key, now); err != nil {
		t.Fatalf("ConsumeOneTime(%q) = %v, want nil", store.KindChallenge, err)
	}
	_, errUsed := db.ConsumeOneTime(ctx, store.KindChallenge, key, now)
	_, errAbsent := db.GetOneTime(ctx, store.KindNonce, key)
	for _, err := range []error{db.PutOneTime(ctx, store.KindChallenge, v), errUsed, errAbsent} {
		if err == nil || bytes.Contains([]byte(err.Error()), []byte(key)) {
			t.Errorf("error %v: want an error that does not contain the key", err)
		}
	}
}
