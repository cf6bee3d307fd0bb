package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

type fakeHealthStore struct {
	writeErr error
	list     []*store.Integration
}

func (f *fakeHealthStore) CheckWritable(context.Context) error { return f.writeErr }
func (f *fakeHealthStore) ListIntegrations(context.Context) ([]*store.Integration, error) {
	return f.list, nil
}

type fakeIntuneCheck struct{ err error }

func (f fakeIntuneCheck) CheckConfig(*store.Integration) error { return f.err }

func readyz(t *testing.T, h *readiness) (int, readyBody) {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
	var body readyBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestReadiness(t *testing.T) {
	key := testpki.NewRSAKey(t, 2048)
	cert := testpki.SelfSigned(t, key, "recipient")
	other := testpki.RSAKeyN(t, 2048, 1)
	good := func() (*x509.Certificate, *rsa.PrivateKey) { return cert, key }
	intuneInteg := []*store.Integration{{ID: "i1", Enabled: true, ChallengeType: store.ChallengeIntune}}
	for _, tc := range []struct {
		name      string
		h         *readiness
		wantFails []string
	}{
		{"ready", &readiness{store: &fakeHealthStore{}, integrations: &fakeHealthStore{list: intuneInteg}, recipient: good, intune: fakeIntuneCheck{}}, nil},
		{"store unwritable", &readiness{store: &fakeHealthStore{writeErr: errors.New("read-only")}, integrations: &fakeHealthStore{}, recipient: good}, []string{checkStore}},
		{"key mismatch", &readiness{store: &fakeHealthStore{}, integrations: &fakeHealthStore{}, recipient: func() (*x509.Certificate, *rsa.PrivateKey) { return cert, other }}, []string{checkCAKey}},
		{"intune config", &readiness{store: &fakeHealthStore{}, integrations: &fakeHealthStore{list: intuneInteg}, recipient: good, intune: fakeIntuneCheck{errors.New("no client secret")}}, []string{checkIntegrations}},
		{"disabled intune ignored", &readiness{store: &fakeHealthStore{}, integrations: &fakeHealthStore{list: []*store.Integration{{ID: "i2", ChallengeType: store.ChallengeIntune}}}, recipient: good, intune: fakeIntuneCheck{errors.New("no client secret")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := readyz(t, tc.h)
			want := http.StatusOK
			if tc.wantFails != nil {
				want = http.StatusServiceUnavailable
			}
			if code != want || !slices.Equal(body.Failed, tc.wantFails) {
				t.Errorf("/readyz = %d %+v, want %d failing %v", code, body, want, tc.wantFails)
			}
		})
	}
}

// TestReadinessKeyCached: the CA key check signs at most once per keyTTL.
func TestReadinessKeyCached(t *testing.T) {
	key := testpki.NewRSAKey(t, 2048)
	cert := testpki.SelfSigned(t, key, "recipient")
	calls := 0
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &readiness{store: &fakeHealthStore{}, integrations: &fakeHealthStore{}, keyTTL: 5 * time.Second, now: func() time.Time { return now },
		recipient: func() (*x509.Certificate, *rsa.PrivateKey) { calls++; return cert, key }}
	readyz(t, h)
	readyz(t, h)
	if calls != 1 {
		t.Errorf("two probes within keyTTL signed %d times, want 1", calls)
	}
	now = now.Add(6 * time.Second)
	readyz(t, h)
	if calls != 2 {
		t.Errorf("a probe after keyTTL signed %d times in all, want 2", calls)
	}
}

func TestServeHealth(t *testing.T) {
	s := startServer(t)
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusOK} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d %s, want %d", path, resp.StatusCode, b, want)
		}
		if path == "/healthz" && string(b) != "ok\n" {
			t.Errorf("GET /healthz body %q, want \"ok\\n\"", b)
		}
	}
}

// TestReadinessRealStore: /readyz over a real bbolt file turns 503, naming
// the store, once the database no longer takes a write.
func TestReadinessRealStore(t *testing.T) {
	t.Parallel()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	key := testpki.NewRSAKey(t, 2048)
	cert := testpki.SelfSigned(t, key, "recipient")
	h := &readiness{store: db, integrations: db, recipient: func() (*x509.Certificate, *rsa.PrivateKey) { return cert, key }}
	if code, body := readyz(t, h); code != http.StatusOK {
		t.Fatalf("/readyz on an open store = %d %+v, want 200", code, body)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, body := readyz(t, h)
	if code != http.StatusServiceUnavailable || !slices.Contains(body.Failed, checkStore) || body.Status == "ok" {
		t.Errorf("/readyz on an unwritable store = %d %+v, want 503 failing %q", code, body, checkStore)
	}
}
