package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzLogsQuery: any query string of GET /api/v1/logs parses to a filter
// within bounds or to a 400 problem, never a panic.
func FuzzLogsQuery(f *testing.F) {
	for _, seed := range []string{
		"", "eventType=certificate.issue&limit=5", "eventType=certificate.&eventType=token.create",
		"since=2026-01-02T15:04:05Z&until=2026-02-02T15:04:05%2B01:00", "limit=0", "limit=1001",
		"cursor=0187b1a2c3d4e5f6-0a1b2c3d", "cursor=x", "eventType=", "type=x", "limit=1&limit=2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, limit, err := parseLogQuery(q)
		if err != nil {
			if pe, ok := errors.AsType[*problemError](err); !ok || pe.status != http.StatusBadRequest {
				t.Fatalf("parseLogQuery(%q) = %v, want a 400 problem", query, err)
			}
			return
		}
		if limit < 1 || limit > maxLogLimit || len(flt.Types) > maxLogTypes {
			t.Fatalf("parseLogQuery(%q) = limit %d, %d types: out of bounds", query, limit, len(flt.Types))
		}
		for _, typ := range flt.Types {
			if typ == "" || strings.ContainsAny(typ, ",*/ ") {
				t.Fatalf("parseLogQuery(%q) accepted type %q", query, typ)
			}
		}
		if !flt.Since.IsZero() && !flt.Until.IsZero() && !flt.Since.Before(flt.Until) {
			t.Fatalf("parseLogQuery(%q) accepted an empty range", query)
		}
	})
}

// FuzzAPIToken: parseAPIToken accepts exactly the form newAPIToken makes.
func FuzzAPIToken(f *testing.F) {
	_, tok := newAPIToken()
	for _, seed := range []string{string(tok), "", "scepca_", "scepca_0123456789abcdef_", string(tok) + "x", strings.ToUpper(string(tok))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, ok := parseAPIToken(raw)
		if !ok {
			return
		}
		if len(raw) != len("scepca_")+16+1+43 || !strings.HasPrefix(raw, "scepca_"+id+"_") || !tokenIDPattern.MatchString(id) {
			t.Fatalf("parseAPIToken(%q) = %q, true: not the token form", raw, id)
		}
	})
}
