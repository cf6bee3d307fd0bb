package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func testCertFilterFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Serials 01..06; 03 and 04 share an IssuedAt (ties list by serial,
	// descending). List order: 06 05 04 03 02 01.
	issued := []time.Duration{0, 1, 2, 2, 3, 4}
	for i, d := range issued {
		c := certificate(fmt.Sprintf("%02d", i+1))
		c.IssuedAt = t0.Add(d * time.Minute)
		c.User = []string{"alice", "bob"}[i%2]
		c.DeviceID = []string{"dev-x", "dev-y", "dev-z"}[i%3]
		c.NotAfter = t0.Add(time.Duration(i+1) * 24 * time.Hour)
		must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))
	}
	serials := func(cs []*store.Certificate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Serial)
		}
		return out
	}
	tests := []struct {
		name   string
		filter store.CertFilter
		want   []string
	}{
		{"all in order", store.CertFilter{}, []string{"06", "05", "04", "03", "02", "01"}},
		{"user", store.CertFilter{User: "alice"}, []string{"05", "03", "01"}},
		{"device", store.CertFilter{DeviceID: "dev-y"}, []string{"05", "02"}},
		{"expiring before", store.CertFilter{ExpiringBefore: t0.Add(3 * 24 * time.Hour)}, []string{"02", "01"}},
		{"after", store.CertFilter{After: "05"}, []string{"04", "03", "02", "01"}},
		{"after a tie", store.CertFilter{After: "04"}, []string{"03", "02", "01"}},
		{"after the last", store.CertFilter{After: "01"}, nil},
		{"after with filter and limit", store.CertFilter{After: "06", User: "alice", Limit: 2}, []string{"05", "03"}},
	}
	for _, tc := range tests {
		got, err := s.ListCertificates(ctx, tc.filter)
		must(t, call("ListCertificates", tc.name), err)
		wantDiff(t, call("ListCertificates", tc.name), tc.want, serials(got))
	}

	// Paging with Limit and After visits every certificate once.
	var walked []string
	f := store.CertFilter{Limit: 4}
	for range 10 {
		page, err := s.ListCertificates(ctx, f)
		must(t, call("ListCertificates", "page"), err)
		if len(page) == 0 {
			break
		}
		walked = append(walked, serials(page)...)
		f.After = page[len(page)-1].Serial
	}
	wantDiff(t, "paged walk", []string{"06", "05", "04", "03", "02", "01"}, walked)

	_, err := s.ListCertificates(ctx, store.CertFilter{After: "FF"})
	wantErr(t, call("ListCertificates", "After unknown serial"), err, store.ErrNotFound)
}

func event(i int, typ string) *store.Event {
	return &store.Event{
		ID:      fmt.Sprintf("%016x-%04d", t0.Add(time.Duration(i)*time.Minute).UnixNano(), i),
		Time:    t0.Add(time.Duration(i) * time.Minute),
		Type:    typ,
		Actor:   "token:t1",
		Target:  fmt.Sprintf("target-%d", i),
		Outcome: store.OutcomeSuccess,
		Details: map[string]string{"n": fmt.Sprint(i)},
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ListEvents(ctx, store.EventFilter{})
	must(t, call("ListEvents", "empty"), err)
	if len(got) != 0 {
		t.Fatalf("ListEvents on an empty store = %d events, want 0", len(got))
	}

	types := []string{"certificate.issue", "device.integration.create", "certificate.revoke", "device.lifecycle.deactivate", "certificate.issue", "certificate.issuer"}
	var all []*store.Event
	for i, typ := range types {
		all = append(all, event(i, typ))
	}
	must(t, call("AppendEvents", "first half"), s.AppendEvents(ctx, all[:3]))
	// A retried append of stored IDs is skipped, not duplicated.
	must(t, call("AppendEvents", "rest with a repeat"), s.AppendEvents(ctx, all[2:]))

	ids := func(es []*store.Event) []int {
		var out []int
		for _, e := range es {
			var n int
			_, _ = fmt.Sscan(e.Details["n"], &n)
			out = append(out, n)
		}
		return out
	}
	tests := []struct {
		name   string
		filter store.EventFilter
		want   []int
	}{
		{"all newest first", store.EventFilter{}, []int{5, 4, 3, 2, 1, 0}},
		{"exact type", store.EventFilter{Types: []string{"certificate.issue"}}, []int{4, 0}},
		{"prefix", store.EventFilter{Types: []string{"certificate."}}, []int{5, 4, 2, 0}},
		{"two types", store.EventFilter{Types: []string{"certificate.revoke", "device."}}, []int{3, 2, 1}},
		{"since", store.EventFilter{Since: t0.Add(3 * time.Minute)}, []int{5, 4, 3}},
		{"until is exclusive", store.EventFilter{Until: t0.Add(2 * time.Minute)}, []int{1, 0}},
		{"range and type", store.EventFilter{Since: t0.Add(time.Minute), Until: t0.Add(5 * time.Minute), Types: []string{"certificate."}}, []int{4, 2}},
		{"before", store.EventFilter{Before: all[3].ID}, []int{2, 1, 0}},
		{"before unknown id between", store.EventFilter{Before: all[3].ID + "0"}, []int{3, 2, 1, 0}},
		{"limit", store.EventFilter{Limit: 2}, []int{5, 4}},
		{"before and limit", store.EventFilter{Before: all[5].ID, Limit: 2, Types: []string{"certificate."}}, []int{4, 2}},
	}
	for _, tc := range tests {
		got, err := s.ListEvents(ctx, tc.filter)
		must(t, call("ListEvents", tc.name), err)
		wantDiff(t, call("ListEvents", tc.name), tc.want, ids(got))
	}
	got, err = s.ListEvents(ctx, store.EventFilter{Limit: 1})
	must(t, call("ListEvents", "limit 1"), err)
	wantDiff(t, "newest event record", []*store.Event{all[5]}, got)

	n, err := s.SweepEvents(ctx, t0.Add(2*time.Minute))
	must(t, call("SweepEvents", "t0+2m"), err)
	if n != 2 {
		t.Errorf("SweepEvents(t0+2m) = %d, want 2 (events 0 and 1)", n)
	}
	got, err = s.ListEvents(ctx, store.EventFilter{})
	must(t, call("ListEvents", "after sweep"), err)
	wantDiff(t, "events after sweep", []int{5, 4, 3, 2}, ids(got))

	err = s.AppendEvents(ctx, []*store.Event{{Type: "x"}})
	if err == nil {
		t.Errorf("AppendEvents(event without ID) = nil, want an error")
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := func(id, scope string) *store.APIToken {
		return &store.APIToken{ID: id, Name: "name " + id, Scope: scope, Hash: []byte("hash-" + id), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	}
	a, b := tok("tok-a", store.ScopeAdmin), tok("tok-b", store.ScopeVerify)
	b.ExpiresAt = time.Time{}
	must(t, call("CreateToken", a.ID), s.CreateToken(ctx, a))
	must(t, call("CreateToken", b.ID), s.CreateToken(ctx, b))
	wantErr(t, call("CreateToken", "duplicate"), s.CreateToken(ctx, tok("tok-a", store.ScopeVerify)), store.ErrExists)

	got, err := s.GetToken(ctx, "tok-a")
	must(t, call("GetToken", "tok-a"), err)
	wantDiff(t, call("GetToken", "tok-a"), a, got)
	list, err := s.ListTokens(ctx)
	must(t, call("ListTokens"), err)
	slices.SortFunc(list, func(x, y *store.APIToken) int { return strings.Compare(x.ID, y.ID) })
	wantDiff(t, call("ListTokens"), []*store.APIToken{a, b}, list)

	must(t, call("DeleteToken", "tok-a"), s.DeleteToken(ctx, "tok-a"))
	_, err = s.GetToken(ctx, "tok-a")
	wantErr(t, call("GetToken", "deleted"), err, store.ErrNotFound)
	wantErr(t, call("DeleteToken", "again"), s.DeleteToken(ctx, "tok-a"), store.ErrNotFound)
}
