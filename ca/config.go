package ca

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Key types of the issuing CA (Config.KeyType).
const (
	KeyTypeRSA   = "rsa"
	KeyTypeECDSA = "ecdsa"
)

// Defaults applied to a zero Config field.
const (
	DefaultOrg      = "scepca"
	DefaultValidity = 365 * 24 * time.Hour
)

// maxOrgLen keeps "<Org> Intermediate Authority" within the 64 characters
// of ub-common-name (RFC 5280, Appendix A.1).
const maxOrgLen = 64 - len(" Intermediate Authority")

// Config configures Init and Open.
type Config struct {
	// Org names the hierarchy: "<Org> Root Authority", "<Org> Intermediate
	// Authority", "<Org> SCEP RA"; default "scepca".
	Org string
	// KeyType of the issuing CA, used by Init only: "rsa" (default,
	// RSA-2048; the intermediate is its own SCEP RA) or "ecdsa" (P-256
	// root and intermediate plus a separate RSA-2048 RA certificate,
	// PROTOCOLS.md §1.3). Open uses whatever the store holds.
	KeyType string
	// PublicURL is the externally reachable base URL, e.g.
	// "https://ca.example.com". Issued certificates carry the CRL
	// distribution point PublicURL+"/crl/"+caID+".crl" and the OCSP AIA
	// PublicURL+"/ocsp"; both are omitted when PublicURL is empty.
	PublicURL string
	// Validity of issued certificates; default 365 days.
	Validity time.Duration
	// Jitter reduces NotAfter by a uniform random amount in [0, Jitter) so
	// that a fleet enrolled on one day does not renew on one day. Default 0.
	// It may be at most half of Validity; a shorter per-request validity
	// caps it at half of that validity.
	Jitter time.Duration
	// ReloadInterval is how often Run rereads the CA records to pick up a
	// rotation step taken by another replica; default
	// DefaultReloadInterval.
	ReloadInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger is the audit logger; default slog.New(slog.DiscardHandler).
	Logger *slog.Logger

	// rsaKey generates RSA-2048 keys for Init; nil means rsa.GenerateKey.
	// Tests set it to hand out cached keys.
	rsaKey func() (*rsa.PrivateKey, error)
}

// Validate reports the first invalid field. Zero values are valid and mean
// the default.
func (c Config) Validate() error {
	if utf8.RuneCountInString(c.Org) > maxOrgLen {
		return fmt.Errorf("ca: config: org is longer than %d characters", maxOrgLen)
	}
	if !utf8.ValidString(c.Org) || strings.IndexFunc(c.Org, unicode.IsControl) >= 0 {
		return errors.New("ca: config: org must be UTF-8 without control characters")
	}
	if c.Org != "" && strings.TrimSpace(c.Org) != c.Org {
		return errors.New("ca: config: org has leading or trailing spaces")
	}
	switch c.KeyType {
	case "", KeyTypeRSA, KeyTypeECDSA:
	default:
		return fmt.Errorf("ca: config: key type %q, want %q or %q", c.KeyType, KeyTypeRSA, KeyTypeECDSA)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil {
			return fmt.Errorf("ca: config: public URL: %w", err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("ca: config: public URL %q: want an absolute http or https URL", c.PublicURL)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("ca: config: public URL %q: no user info, query or fragment allowed", c.PublicURL)
		}
	}
	if c.Validity < 0 {
		return fmt.Errorf("ca: config: validity %v is negative", c.Validity)
	}
	validity := c.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	if validity < time.Minute {
		return fmt.Errorf("ca: config: validity %v is shorter than a minute", c.Validity)
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("ca: config: reload interval %v is negative", c.ReloadInterval)
	}
	if c.Jitter < 0 {
		return fmt.Errorf("ca: config: jitter %v is negative", c.Jitter)
	}
	if c.Jitter > validity/2 {
		return fmt.Errorf("ca: config: jitter %v exceeds half the validity %v", c.Jitter, validity)
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Org == "" {
		c.Org = DefaultOrg
	}
	if c.KeyType == "" {
		c.KeyType = KeyTypeRSA
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.Validity == 0 {
		c.Validity = DefaultValidity
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.rsaKey == nil {
		c.rsaKey = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	}
	return c
}
