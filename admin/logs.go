package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/store"
)

// The audit log API (docs/api.md, "Audit log"): GET /api/v1/logs lists
// stored events newest first, filtered by event type and time, a page at a
// time with a Link header to the next page.
const (
	defaultLogLimit = 100
	maxLogLimit     = 1000
	maxLogTypes     = 20
)

// eventTypeFilter is an event type ("certificate.issue") or a prefix of
// whole words ending in "." ("certificate.", "device.lifecycle.").
var eventTypeFilter = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$`)

// logParams are the query parameters of GET /api/v1/logs.
var logParams = map[string]bool{"eventType": true, "since": true, "until": true, "limit": true, "cursor": true}

// Events is the body of GET /api/v1/logs.
type Events struct {
	Events []*store.Event `json:"events"`
}

// listLogs answers one page of events. It asks the store for one more
// event than the page holds, so that the Link to a next page is given only
// when there is one.
func (a *API) listLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, limit, err := parseLogQuery(q)
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	if !f.Until.IsZero() {
		// Event IDs start with their time (auditlog.NewEventID), so every
		// event before until sorts before this key: the store starts its
		// walk there instead of at the newest event.
		if k := fmt.Sprintf("%016x", f.Until.UnixNano()); f.Before == "" || k < f.Before {
			f.Before = k
		}
	}
	events, err := a.store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	if len(events) > limit {
		events = events[:limit]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("limit", strconv.Itoa(limit))
		next.Set("cursor", events[limit-1].ID)
		w.Header().Set("Link", "<"+a.publicURL+"/api/v1/logs?"+next.Encode()+`>; rel="next"`)
	}
	if events == nil {
		events = []*store.Event{}
	}
	return writeJSON(w, http.StatusOK, Events{Events: events})
}

// parseLogQuery validates the query of GET /api/v1/logs.
func parseLogQuery(q url.Values) (store.EventFilter, int, error) {
	var f store.EventFilter
	for k := range q {
		if !logParams[k] {
			return f, 0, problemf(http.StatusBadRequest, "unknown query parameter %q (eventType, since, until, limit, cursor)", k)
		}
	}
	for _, k := range []string{"since", "until", "limit", "cursor"} {
		if len(q[k]) > 1 {
			return f, 0, problemf(http.StatusBadRequest, "%s is given more than once", k)
		}
	}
	types := q["eventType"]
	if len(types) > maxLogTypes {
		return f, 0, problemf(http.StatusBadRequest, "at most %d eventType values", maxLogTypes)
	}
	for _, t := range types {
		if len(t) > 128 || !eventTypeFilter.MatchString(t) {
			return f, 0, problemf(http.StatusBadRequest, "eventType %q is not an event type (certificate.issue) or a prefix ending in a dot (certificate.)", t)
		}
	}
	f.Types = types
	var err error
	if f.Since, err = parseLogTime(q, "since"); err != nil {
		return f, 0, err
	}
	if f.Until, err = parseLogTime(q, "until"); err != nil {
		return f, 0, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, 0, problemf(http.StatusBadRequest, "since must be before until")
	}
	limit := defaultLogLimit
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			return f, 0, problemf(http.StatusBadRequest, "limit must be a whole number from 1 to %d", maxLogLimit)
		}
		limit = n
	}
	if q.Has("cursor") {
		c := q.Get("cursor")
		if !auditlog.ValidEventID(c) {
			return f, 0, problemf(http.StatusBadRequest, "cursor is not one this API returned (take it from the Link header)")
		}
		f.Before = c
	}
	return f, limit, nil
}

func parseLogTime(q url.Values, key string) (time.Time, error) {
	if !q.Has(key) {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, q.Get(key))
	if err != nil {
		return time.Time{}, problemf(http.StatusBadRequest, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", key)
	}
	return t.UTC(), nil
}
