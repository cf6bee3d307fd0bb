package intune

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// ClientSecret is an Entra ID app's client secret. It never prints:
// String, GoString and LogValue return "REDACTED" (STYLE.md §5).
type ClientSecret string

// String implements fmt.Stringer without revealing the secret.
func (ClientSecret) String() string { return "REDACTED" }

// GoString keeps %#v from printing the secret.
func (ClientSecret) GoString() string { return `"REDACTED"` }

// LogValue implements slog.LogValuer without revealing the secret.
func (ClientSecret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON keeps an encoded struct from carrying the secret; a client
// that must send it encodes Reveal() itself. Decoding is unaffected.
func (ClientSecret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// Reveal returns the secret, for the token request and sealing only.
func (s ClientSecret) Reveal() string { return string(s) }

// token is an access token: a bearer credential, redacted like a secret.
type token string

func (token) String() string       { return "REDACTED" }
func (token) GoString() string     { return `"REDACTED"` }
func (token) LogValue() slog.Value { return slog.StringValue("REDACTED") }
func (t token) bearer() string     { return "Bearer " + string(t) }

var (
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	tenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.onmicrosoft\.com$`)
)

// IsGUID reports whether s is a GUID in its 8-4-4-4-12 hexadecimal form.
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// NormalizeTenant checks a tenant given as "<name>.onmicrosoft.com" or as
// the tenant GUID and returns it in lower case.
func NormalizeTenant(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if IsGUID(t) || tenantPattern.MatchString(t) {
		return t, nil
	}
	return "", fmt.Errorf("tenant must be <name>.onmicrosoft.com or the tenant ID (a GUID), not %q", shorten(s, ""))
}

// NormalizeClientID checks an application (client) ID: a GUID, returned in
// lower case.
func NormalizeClientID(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if !IsGUID(t) {
		return "", fmt.Errorf("clientId must be the application (client) ID of the app registration, a GUID, not %q", shorten(s, ""))
	}
	return t, nil
}

// CheckClientSecret checks the shape of a client secret: present, at most
// 1024 characters, printable ASCII. The error never quotes it.
func CheckClientSecret(s ClientSecret) error {
	v := s.Reveal()
	switch {
	case v == "":
		return fmt.Errorf("clientSecret is required")
	case len(v) > 1024:
		return fmt.Errorf("clientSecret must be at most 1024 characters")
	}
	for _, c := range []byte(v) {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("clientSecret must be printable ASCII without spaces (the secret's Value in Entra ID, not its Secret ID)")
		}
	}
	return nil
}

// NormalizeBaseURL checks an authority or Graph base URL and returns it
// without a trailing slash; "" gives def. It must be https, or http to a
// loopback address (tests, local proxies), with no user, query or
// fragment.
func NormalizeBaseURL(s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", shorten(s, ""))
	}
	if err := checkURL(u); err != nil {
		return "", err
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q must have no user, query or fragment", shorten(s, ""))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// checkURL accepts https, and http only to a loopback host.
func checkURL(u *url.URL) error {
	switch {
	case u.Host == "":
		return fmt.Errorf("%q has no host", shorten(u.String(), ""))
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must be https (plain http only to a loopback address)", shorten(u.String(), ""))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newRequestID returns a random version-4 GUID for client-request-id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
