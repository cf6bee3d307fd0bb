package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/scepca/scepca/ca"
)

// FuzzCertificateQuery: any list query parses into bounded filters or a
// 400, never a panic; a cursor names a canonical serial.
func FuzzCertificateQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=1", "status=REVOKED&integrationId=i1&user=a&deviceId=D", "expiringBefore=2027-01-01T00:00:00Z",
		"cursor=QUJDREVG", "cursor=!!", "limit=0", "limit=1001", "deviceID=x", "user=a&user=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		filter, err := certFilter(q)
		if err != nil {
			if pe, ok := errors.AsType[*problemError](err); !ok || pe.status != http.StatusBadRequest {
				t.Fatalf("certFilter(%q) = %v, want a 400 problem", raw, err)
			}
			return
		}
		if filter.Limit < 1 || filter.Limit > maxCertLimit {
			t.Fatalf("certFilter(%q) limit %d out of bounds", raw, filter.Limit)
		}
		if filter.After != "" {
			n, err := ca.ParseSerial(filter.After)
			if err != nil || ca.SerialString(n) != filter.After {
				t.Fatalf("certFilter(%q) cursor %q is not a canonical serial", raw, filter.After)
			}
		}
	})
}

// FuzzRevokeReason: any JSON value is a revocable RFC 5280 reason or a 400.
func FuzzRevokeReason(f *testing.F) {
	for _, s := range []string{`"keyCompromise"`, `1`, `8`, `"removeFromCRL"`, `null`, `true`, `1.5`, `-1`, `"CERTIFICATEHOLD"`, `{}`, `1e2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		code, err := parseReason(raw)
		if err != nil {
			if pe, ok := errors.AsType[*problemError](err); !ok || pe.status != http.StatusBadRequest {
				t.Fatalf("parseReason(%s) = %v, want a 400 problem", raw, err)
			}
			return
		}
		if _, ok := crlReasons[code]; !ok || code == reasonRemoveFromCRL {
			t.Fatalf("parseReason(%s) = %d, not a revocable reason", raw, code)
		}
	})
}
