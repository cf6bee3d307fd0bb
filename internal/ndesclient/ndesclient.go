// Package ndesclient fetches a one-time SCEP challenge from an NDES
// mscep_admin-style page the way Fleet's NDES proxy does (fleet
// ee/server/service/scep/scep_proxy.go): an anonymous probe first, Basic
// credentials after a 401 that asks for them, UTF-16LE detection, and the
// password phrase matched case-insensitively. Tests use it as an independent
// client of scepca's challenge page. It imports no scepca package.
package ndesclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf16"
)

// Errors a caller can tell apart, as Fleet does by substring.
var (
	ErrCacheFull  = errors.New("ndesclient: the password cache is full")
	ErrPermission = errors.New("ndesclient: insufficient permission to enroll with SCEP")
	ErrInvalid    = errors.New("ndesclient: invalid admin URL or credentials")
)

var passwordRE = regexp.MustCompile(`(?i)the enrollment challenge password is: <B> (\S+)`)

// Fetch returns a fresh challenge from url. Like go-ntlmssp's negotiator it
// first sends the request without credentials and only answers a 401 that
// offers Basic.
func Fetch(ctx context.Context, client *http.Client, url, username, password string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, body, err := get(ctx, client, url, "", "") //nolint:bodyclose // get reads and closes the body; only status and headers are used
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if !strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic") {
			return "", fmt.Errorf("%w: server does not offer Basic (%q)", ErrInvalid, resp.Header.Get("WWW-Authenticate"))
		}
		if resp, body, err = get(ctx, client, url, username, password); err != nil { //nolint:bodyclose // get reads and closes the body
			return "", err
		}
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: HTTP %d", ErrInvalid, resp.StatusCode)
	}
	return ParsePage(body)
}

func get(ctx context.Context, client *http.Client, url, user, pass string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// ParsePage decodes the page (UTF-16LE when it looks like it, as NDES
// sends it) and returns the challenge, or ErrCacheFull, ErrPermission or
// ErrInvalid.
func ParsePage(body []byte) (string, error) {
	text := Decode(body)
	if m := passwordRE.FindStringSubmatch(text); m != nil {
		return m[1], nil
	}
	switch {
	case strings.Contains(text, "The password cache is full."):
		return "", ErrCacheFull
	case strings.Contains(text, "You do not have sufficient permission to enroll with SCEP."):
		return "", ErrPermission
	}
	return "", fmt.Errorf("%w: no challenge password on the page", ErrInvalid)
}

// Decode applies Fleet's UTF-16LE detection: a FF FE byte-order mark, a
// page starting with '<' followed by NUL, or mostly NULs at odd offsets in
// the first 100 bytes; otherwise the bytes are UTF-8.
func Decode(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		return decodeUTF16LE(b[2:])
	case len(b) >= 2 && b[0] == '<' && b[1] == 0:
		return decodeUTF16LE(b)
	}
	n, nul := min(len(b), 100), 0
	for i := 1; i < n; i += 2 {
		if b[i] == 0 {
			nul++
		}
	}
	if n >= 2 && nul*10 >= (n/2)*9 {
		return decodeUTF16LE(b)
	}
	return string(b)
}

func decodeUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}
