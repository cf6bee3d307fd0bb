package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/store"
)

// seedEvents stores n events one second apart from start, cycling through
// types, and returns them newest first.
func seedEvents(t *testing.T, f *eventsFixture, start time.Time, n int, types ...string) []*store.Event {
	t.Helper()
	var evs []*store.Event
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second)
		evs = append(evs, &store.Event{
			ID: auditlog.NewEventID(at), Time: at, Type: types[i%len(types)], Actor: "system",
			Target: fmt.Sprintf("t%03d", i), Outcome: store.OutcomeSuccess,
		})
	}
	if err := f.db.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// page gets one page of /api/v1/logs and returns its events and the next
// page's path ("" without a Link).
func (f *eventsFixture) page(t *testing.T, path string) ([]*store.Event, string) {
	t.Helper()
	resp, b := f.do(t, http.MethodGet, path, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", path, resp.StatusCode, b)
	}
	var body struct {
		Events []*store.Event `json:"events"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Events == nil {
		t.Fatalf("GET %s body %s: %v, want {\"events\":[...]}", path, b, err)
	}
	link := resp.Header.Get("Link")
	if link == "" {
		return body.Events, ""
	}
	m := linkNext.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("GET %s Link = %q, want <url>; rel=\"next\"", path, link)
	}
	next, ok := strings.CutPrefix(m[1], wantBase)
	if !ok || !strings.HasPrefix(next, "/api/v1/logs?") {
		t.Fatalf("GET %s Link URL = %q, want %s/api/v1/logs?...", path, m[1], wantBase)
	}
	return body.Events, next
}

// all follows Link headers from path until there is none and returns the
// events and the page sizes.
func (f *eventsFixture) all(t *testing.T, path string) ([]*store.Event, []int) {
	t.Helper()
	var out []*store.Event
	var sizes []int
	for path != "" && len(sizes) < 100 {
		var evs []*store.Event
		evs, path = f.page(t, path)
		out = append(out, evs...)
		sizes = append(sizes, len(evs))
	}
	return out, sizes
}

func targets(evs []*store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Target)
	}
	return out
}

func TestLogs(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	all := seedEvents(t, f, start, 250, "certificate.issue", "certificate.revoke", "device.lifecycle.suspend", "token.create", "certificate.refuse")
	filter := func(keep func(*store.Event) bool) []string {
		var out []string
		for _, e := range all {
			if keep(e) {
				out = append(out, e.Target)
			}
		}
		return out
	}
	at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Second) }
	q := url.QueryEscape

	tests := []struct {
		name      string
		path      string
		want      []string
		wantPages []int
	}{
		{"default limit 100", "/api/v1/logs", targets(all), []int{100, 100, 50}},
		{"limit 1000", "/api/v1/logs?limit=1000", targets(all), []int{250}},
		{"exact page size", "/api/v1/logs?limit=125", targets(all), []int{125, 125}},
		{"one type", "/api/v1/logs?eventType=certificate.issue&limit=7",
			filter(func(e *store.Event) bool { return e.Type == "certificate.issue" }), []int{7, 7, 7, 7, 7, 7, 7, 1}},
		{"prefix", "/api/v1/logs?eventType=certificate.&limit=100",
			filter(func(e *store.Event) bool { return strings.HasPrefix(e.Type, "certificate.") }), []int{100, 50}},
		{"repeated type", "/api/v1/logs?eventType=token.create&eventType=device.lifecycle.&limit=60",
			filter(func(e *store.Event) bool { return e.Type == "token.create" || e.Type == "device.lifecycle.suspend" }), []int{60, 40}},
		{"a prefix is whole words", "/api/v1/logs?eventType=cert.", nil, []int{0}},
		{"time range", "/api/v1/logs?since=" + q(at(10).Format(time.RFC3339)) + "&until=" + q(at(40).Format(time.RFC3339)) + "&limit=20",
			filter(func(e *store.Event) bool { return !e.Time.Before(at(10)) && e.Time.Before(at(40)) }), []int{20, 10}},
		{"since, offset zone", "/api/v1/logs?since=" + q(at(245).In(time.FixedZone("", -5*3600)).Format(time.RFC3339)),
			filter(func(e *store.Event) bool { return !e.Time.Before(at(245)) }), []int{5}},
		{"type and time", "/api/v1/logs?eventType=certificate.revoke&until=" + q(at(30).Format(time.RFC3339)) + "&limit=2",
			filter(func(e *store.Event) bool { return e.Type == "certificate.revoke" && e.Time.Before(at(30)) }), []int{2, 2, 2}},
		{"nothing matches", "/api/v1/logs?eventType=device.integration.create", nil, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, pages := f.all(t, tc.path)
			if !slices.Equal(targets(got), tc.want) {
				t.Errorf("GET %s (all pages) = %d events %v…, want %d", tc.path, len(got), first(targets(got)), len(tc.want))
			}
			if !slices.Equal(pages, tc.wantPages) {
				t.Errorf("GET %s page sizes = %v, want %v", tc.path, pages, tc.wantPages)
			}
		})
	}

	t.Run("event fields", func(t *testing.T) {
		t.Parallel()
		resp, b := f.do(t, http.MethodGet, "/api/v1/logs?limit=1", "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /api/v1/logs?limit=1 = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		e := all[0]
		want := fmt.Sprintf(`{"events":[{"id":%q,"time":%q,"eventType":%q,"actor":"system","target":%q,"outcome":"SUCCESS"}]}`,
			e.ID, e.Time.Format(time.RFC3339Nano), e.Type, e.Target)
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("GET /api/v1/logs?limit=1 = %s, want %s", got, want)
		}
		wantLink := `<` + wantBase + `/api/v1/logs?cursor=` + e.ID + `&limit=1>; rel="next"`
		if got := resp.Header.Get("Link"); got != wantLink {
			t.Errorf("Link = %q, want %q", got, wantLink)
		}
	})
}

func first(s []string) []string { return s[:min(len(s), 3)] }

// TestLogsNewEvents: a page boundary is stable while new events arrive: the
// cursor continues below the last event seen.
func TestLogsNewEvents(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	seedEvents(t, f, start, 10, "certificate.issue")
	page1, next := f.page(t, "/api/v1/logs?limit=6")
	seedEvents(t, f, start.Add(time.Hour), 5, "certificate.issue")
	rest, _ := f.all(t, next)
	got := targets(append(page1, rest...))
	want := []string{"t009", "t008", "t007", "t006", "t005", "t004", "t003", "t002", "t001", "t000"}
	if !slices.Equal(got, want) {
		t.Errorf("pages across new events = %v, want %v", got, want)
	}
}

func TestLogsInvalid(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	tests := []struct{ name, query, detail string }{
		{"empty type", "eventType=", "is not an event type"},
		{"upper case type", "eventType=Certificate.Issue", "is not an event type"},
		{"double dot", "eventType=certificate..issue", "is not an event type"},
		{"comma list", "eventType=certificate.issue,certificate.revoke", "is not an event type"},
		{"wildcard", "eventType=certificate.*", "is not an event type"},
		{"too many types", strings.Repeat("eventType=a.b&", 21), "at most 20"},
		{"since not RFC 3339", "since=yesterday", "since must be an RFC 3339 time"},
		{"since without zone", "since=2026-01-02T15:04:05", "since must be an RFC 3339 time"},
		{"until invalid month", "until=2026-13-01T00:00:00Z", "until must be an RFC 3339 time"},
		{"since after until", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since must be before until"},
		{"empty range", "since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since must be before until"},
		{"limit zero", "limit=0", "limit must be a whole number from 1 to 1000"},
		{"limit too large", "limit=1001", "limit must be a whole number from 1 to 1000"},
		{"limit negative", "limit=-5", "limit must be a whole number from 1 to 1000"},
		{"limit not a number", "limit=ten", "limit must be a whole number from 1 to 1000"},
		{"limit empty", "limit=", "limit must be a whole number from 1 to 1000"},
		{"limit twice", "limit=1&limit=2", "limit is given more than once"},
		{"cursor not an ID", "cursor=abc", "cursor is not one this API returned"},
		{"cursor path", "cursor=../../etc/passwd", "cursor is not one this API returned"},
		{"cursor empty", "cursor=", "cursor is not one this API returned"},
		{"unknown parameter", "type=certificate.issue", `unknown query parameter "type"`},
	}
	for _, tc := range tests {
		resp, b := f.do(t, http.MethodGet, "/api/v1/logs?"+tc.query, "")
		wantProblem(t, "GET /api/v1/logs?"+tc.query, resp, b, http.StatusBadRequest, tc.detail)
	}
	resp, b := f.doAuth(t, http.MethodGet, "/api/v1/logs", "", "")
	wantProblem(t, "GET /api/v1/logs without a token", resp, b, http.StatusUnauthorized, "missing bearer token")
	resp, b = f.do(t, http.MethodPost, "/api/v1/logs", "")
	wantProblem(t, "POST /api/v1/logs", resp, b, http.StatusNotFound, "no such API route")
}
