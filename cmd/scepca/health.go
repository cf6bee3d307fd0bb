package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/scepca/scepca/store"
)

// Readiness checks, named in /readyz's JSON body.
const (
	checkStore        = "store"
	checkCAKey        = "ca_key"
	checkIntegrations = "integrations"
)

// readiness answers /healthz and /readyz (docs/operations.md, Health).
type readiness struct {
	// store proves the database takes a durable write.
	store interface {
		CheckWritable(ctx context.Context) error
	}
	integrations interface {
		ListIntegrations(ctx context.Context) ([]*store.Integration, error)
	}
	// recipient returns the key that decrypts requests and signs replies.
	recipient func() (*x509.Certificate, *rsa.PrivateKey)
	// intune loads an INTUNE integration's configuration without a call.
	intune interface {
		CheckConfig(in *store.Integration) error
	}
	// keyTTL caches the CA key check so probes don't spend a signature each.
	keyTTL  time.Duration
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex
	keyAt  time.Time
	keyErr error
}

// Register adds GET /healthz and GET /readyz (no authentication).
func (h *readiness) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", h.serveReady)
}

type readyBody struct {
	Status string            `json:"status"`
	Failed []string          `json:"failed,omitempty"`
	Checks map[string]string `json:"checks"`
}

func (h *readiness) serveReady(w http.ResponseWriter, r *http.Request) {
	timeout := h.timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	body := readyBody{Status: "ok", Checks: map[string]string{}}
	for _, c := range []struct {
		name string
		run  func(context.Context) error
	}{
		{checkStore, h.checkStore},
		{checkCAKey, h.checkKey},
		{checkIntegrations, h.checkIntegrations},
	} {
		if err := c.run(ctx); err != nil {
			body.Status = "unavailable"
			body.Failed = append(body.Failed, c.name)
			body.Checks[c.name] = err.Error()
			continue
		}
		body.Checks[c.name] = "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if body.Failed != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (h *readiness) checkStore(ctx context.Context) error {
	return h.store.CheckWritable(ctx)
}

// checkKey signs a fixed digest with the recipient key and verifies it with
// the recipient certificate, at most once per keyTTL.
func (h *readiness) checkKey(context.Context) error {
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	ttl := h.keyTTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := now(); !h.keyAt.IsZero() && t.Sub(h.keyAt) < ttl && !t.Before(h.keyAt) {
		return h.keyErr
	}
	h.keyErr = signCheck(h.recipient)
	h.keyAt = now()
	return h.keyErr
}

func signCheck(recipient func() (*x509.Certificate, *rsa.PrivateKey)) error {
	cert, key := recipient()
	if cert == nil || key == nil {
		return errors.New("no recipient certificate or key")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("recipient key does not match its certificate")
	}
	digest := sha256.Sum256([]byte("scepca readiness"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// checkIntegrations loads every integration and, for enabled INTUNE ones,
// their Entra ID settings and sealed client secret.
func (h *readiness) checkIntegrations(ctx context.Context) error {
	list, err := h.integrations.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	for _, in := range list {
		if in.Enabled && in.ChallengeType == store.ChallengeIntune && h.intune != nil {
			if err := h.intune.CheckConfig(in); err != nil {
				return err
			}
		}
	}
	return nil
}
