package admin

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"unicode/utf8"
)

// FuzzDeviceQuery: any query string of GET /api/v1/devices parses to a
// filter within bounds or to a 400 problem, never a panic; cursors round
// trip.
func FuzzDeviceQuery(f *testing.F) {
	for _, seed := range []string{
		"", "status=ACTIVE&platform=IOS&limit=3", "limit=0", "limit=1001", "cursor=ZDE6UEhPTkUtMg",
		"cursor=%21%21", "user=alice&integrationId=intx", "state=ACTIVE", "limit=-1&limit=5",
	} {
		f.Add(seed, "PHONE-2")
	}
	f.Fuzz(func(t *testing.T, query, id string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := parseDeviceFilter(q)
		switch {
		case err != nil:
			if pe, ok := errors.AsType[*problemError](err); !ok || pe.status != http.StatusBadRequest {
				t.Fatalf("parseDeviceFilter(%q) = %v, want a 400 problem", query, err)
			}
		case flt.limit < 1 || flt.limit > maxDeviceLimit:
			t.Fatalf("parseDeviceFilter(%q).limit = %d, out of bounds", query, flt.limit)
		}
		if id == "" || !utf8.ValidString(id) {
			return
		}
		if got, err := decodeCursor(encodeCursor(id)); err != nil || got != id {
			t.Fatalf("decodeCursor(encodeCursor(%q)) = %q, %v", id, got, err)
		}
	})
}
