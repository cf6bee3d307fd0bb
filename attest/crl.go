package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrCRLUnavailable: no usable CRL for an uploaded issuer's certificate (no
// http distribution point, a fetch that failed or timed out, a CRL that is
// too large, does not parse, is not signed by the issuer, or is past its
// nextUpdate). The verifier fails closed: such a certificate is not
// managed (CRL_UNAVAILABLE). A revocation that cannot be checked is not
// assumed absent.
var ErrCRLUnavailable = errors.New("attest: CRL unavailable")

// CRLStatus is a certificate's state in its issuer's CRL.
type CRLStatus int

// CRL states.
const (
	CRLGood CRLStatus = iota
	CRLRevoked
	CRLHold // listed with reason certificateHold
)

// CRL defaults (CRLConfig).
const (
	DefaultCRLTimeout    = 10 * time.Second
	DefaultCRLMaxBytes   = 10 << 20
	DefaultCRLMaxAge     = 24 * time.Hour
	DefaultCRLRetryAfter = 30 * time.Second
	DefaultCRLMaxEntries = 64
	// crlNoNextUpdate is how long a CRL without nextUpdate is cached.
	crlNoNextUpdate = time.Hour
)

// RFC 5280 §5.3.1 reason codes the cache interprets.
const (
	reasonCertificateHold = 6
	reasonRemoveFromCRL   = 8
)

// CRLConfig configures CRLs; zero fields take the defaults.
type CRLConfig struct {
	// Client fetches CRLs; its Timeout is not used (Timeout is). Default:
	// a client that follows at most three http(s) redirects.
	Client *http.Client
	// Timeout bounds one fetch, from dial to the last byte.
	Timeout time.Duration
	// MaxBytes bounds a CRL's size.
	MaxBytes int64
	// MaxAge caps how long a CRL is cached even if its nextUpdate is later.
	MaxAge time.Duration
	// RetryAfter is how long a failed fetch is remembered before the next
	// attempt, so a down CRL server is not asked on every sign-in.
	RetryAfter time.Duration
	// MaxEntries bounds the number of cached CRLs.
	MaxEntries int
	Now        func() time.Time
}

// CRLs fetches and caches the CRLs of uploaded issuers. A CRL is fetched
// from the certificate's first http or https distribution point, verified
// against the issuer, and cached until its nextUpdate (at most MaxAge).
// Concurrent checks of one CRL share one fetch. URLs come only from
// certificates whose signature an uploaded issuer has already verified, so
// only administrator-trusted CAs direct these fetches.
type CRLs struct {
	cfg CRLConfig

	mu      sync.Mutex
	entries map[string]*crlEntry
}

type crlEntry struct {
	mu        sync.Mutex
	revoked   map[string]int // canonical serial → reason
	until     time.Time      // cached until
	failed    error
	failUntil time.Time
	lastUsed  time.Time
}

// NewCRLs returns a CRL cache.
func NewCRLs(cfg CRLConfig) (*CRLs, error) {
	if cfg.Timeout < 0 || cfg.MaxBytes < 0 || cfg.MaxAge < 0 || cfg.RetryAfter < 0 || cfg.MaxEntries < 0 {
		return nil, errors.New("attest: CRL config: negative limit")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultCRLTimeout
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultCRLMaxBytes
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultCRLMaxAge
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultCRLRetryAfter
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultCRLMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to scheme %q", req.URL.Scheme)
			}
			return nil
		}}
	}
	return &CRLs{cfg: cfg, entries: map[string]*crlEntry{}}, nil
}

// Check returns cert's state in the CRL of issuer, or an error wrapping
// ErrCRLUnavailable.
func (c *CRLs) Check(ctx context.Context, cert, issuer *x509.Certificate) (CRLStatus, error) {
	u := crlURL(cert)
	if u == "" {
		return CRLGood, fmt.Errorf("%w: certificate has no http(s) CRL distribution point", ErrCRLUnavailable)
	}
	e := c.entry(issuer, u)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	e.lastUsed = now
	if e.revoked == nil || !now.Before(e.until) {
		if e.failed != nil && now.Before(e.failUntil) {
			return CRLGood, e.failed
		}
		revoked, until, err := c.fetch(ctx, u, issuer, now)
		if err != nil {
			e.revoked = nil
			e.failed = fmt.Errorf("%w: %s: %w", ErrCRLUnavailable, u, err)
			e.failUntil = now.Add(c.cfg.RetryAfter)
			return CRLGood, e.failed
		}
		e.revoked, e.until, e.failed = revoked, until, nil
	}
	switch reason, ok := e.revoked[serialString(cert)]; {
	case !ok || reason == reasonRemoveFromCRL:
		return CRLGood, nil
	case reason == reasonCertificateHold:
		return CRLHold, nil
	}
	return CRLRevoked, nil
}

// entry returns the cache entry of (issuer, url), evicting the least
// recently used one when the cache is full.
func (c *CRLs) entry(issuer *x509.Certificate, u string) *crlEntry {
	sum := sha256.Sum256(issuer.Raw)
	key := string(sum[:]) + u
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		return e
	}
	if len(c.entries) >= c.cfg.MaxEntries {
		var oldKey string
		var oldest time.Time
		for k, e := range c.entries {
			if !e.mu.TryLock() {
				continue // in use: not the least recently used
			}
			if oldKey == "" || e.lastUsed.Before(oldest) {
				oldKey, oldest = k, e.lastUsed
			}
			e.mu.Unlock()
		}
		delete(c.entries, oldKey)
	}
	e := &crlEntry{}
	c.entries[key] = e
	return e
}

// fetch downloads, parses and verifies the CRL at u.
func (c *CRLs) fetch(ctx context.Context, u string, issuer *x509.Certificate, now time.Time) (map[string]int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	req.Header.Set("Accept", "application/pkix-crl")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBytes+1))
	if err != nil {
		return nil, time.Time{}, err
	}
	if int64(len(body)) > c.cfg.MaxBytes {
		return nil, time.Time{}, fmt.Errorf("CRL larger than %d bytes", c.cfg.MaxBytes)
	}
	if blk, _ := pem.Decode(body); blk != nil && blk.Type == "X509 CRL" {
		body = blk.Bytes
	}
	crl, err := x509.ParseRevocationList(body)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("parse CRL: %w", err)
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return nil, time.Time{}, errors.New("CRL issuer is not the certificate's issuer")
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, time.Time{}, fmt.Errorf("CRL signature: %w", err)
	}
	until := now.Add(crlNoNextUpdate)
	if !crl.NextUpdate.IsZero() {
		if !now.Before(crl.NextUpdate) {
			return nil, time.Time{}, fmt.Errorf("CRL is past its nextUpdate %v", crl.NextUpdate.UTC())
		}
		until = crl.NextUpdate
	}
	until = minTime(until, now.Add(c.cfg.MaxAge))
	revoked := make(map[string]int, len(crl.RevokedCertificateEntries))
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber != nil {
			revoked[strings.ToUpper(r.SerialNumber.Text(16))] = r.ReasonCode
		}
	}
	return revoked, until, nil
}

// crlURL is cert's first http or https CRL distribution point.
func crlURL(cert *x509.Certificate) string {
	for _, s := range cert.CRLDistributionPoints {
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return s
		}
	}
	return ""
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// serialString is the canonical serial of cert: uppercase hexadecimal
// without leading zeros, as the store keys certificates.
func serialString(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	return strings.ToUpper(cert.SerialNumber.Text(16))
}
