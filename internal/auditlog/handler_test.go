package auditlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scepca/scepca/internal/auditlog"
)

// memSink records each batch it is given; fail makes the next calls fail.
type memSink struct {
	mu      sync.Mutex
	batches [][]*auditlog.Event
	fail    int // fail this many calls before succeeding
	calls   int
	got     chan int // when set, receives each stored batch's size
}

func (s *memSink) AppendEvents(_ context.Context, events []*auditlog.Event) error {
	s.mu.Lock()
	s.calls++
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return errors.New("disk on fire")
	}
	s.batches = append(s.batches, slices.Clone(events))
	got := s.got
	s.mu.Unlock()
	if got != nil {
		got <- len(events)
	}
	return nil
}

func (s *memSink) events() []*auditlog.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*auditlog.Event
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func (s *memSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, len(b))
	}
	return out
}

// counts collects Config.Observe calls.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) observe(result string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[result] += n
}

func (c *counts) get(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[result]
}

func newHandler(t *testing.T, cfg auditlog.Config) *auditlog.Handler {
	t.Helper()
	h, err := auditlog.New(cfg)
	if err != nil {
		t.Fatalf("auditlog.New() = %v, want nil", err)
	}
	return h
}

// runUntilClosed runs h's batcher and returns a func that stops it and
// waits until everything queued is flushed.
func runUntilClosed(t *testing.T, h *auditlog.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type stringer struct{}

func (stringer) String() string { return "REDACTED" }

func TestEvents(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 19, 0, 0, 123, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		ctx   func(context.Context) context.Context
		level slog.Level
		msg   string
		log   func(*slog.Logger) *slog.Logger // WithAttrs/WithGroup
		args  []any
		want  *auditlog.Event // nil: no event
	}{
		{
			name: "issue with actor from context",
			ctx:  func(ctx context.Context) context.Context { return auditlog.WithActor(ctx, "scep:int-1") },
			msg:  "certificate.issue",
			args: []any{"target", "0a1b", "integration_id", "int-1", "transaction_id", "tx", "ca_id", "ca-9", "subject", "CN=alice"},
			want: &auditlog.Event{Type: "certificate.issue", Actor: "scep:int-1", Target: "0a1b", Outcome: "SUCCESS",
				Details: map[string]string{"integrationId": "int-1", "transactionId": "tx", "caId": "ca-9", "subject": "CN=alice"}},
		},
		{
			name: "default actor system, failure outcome",
			msg:  "certificate.refuse",
			args: []any{"target", "int-1", "outcome", "failure", "fail_info", "badRequest"},
			want: &auditlog.Event{Type: "certificate.refuse", Actor: "system", Target: "int-1", Outcome: "FAILURE",
				Details: map[string]string{"failInfo": "badRequest"}},
		},
		{
			name: "outcome in upper case",
			msg:  "device.integration.create",
			args: []any{"outcome", "SUCCESS"},
			want: &auditlog.Event{Type: "device.integration.create", Actor: "system", Outcome: "SUCCESS"},
		},
		{
			name: "other outcome kept as result",
			msg:  "challenge.fetch",
			args: []any{"target", "int-2", "outcome", "throttled"},
			want: &auditlog.Event{Type: "challenge.fetch", Actor: "system", Target: "int-2", Outcome: "FAILURE",
				Details: map[string]string{"result": "throttled"}},
		},
		{
			name:  "no outcome at ERROR is a failure",
			level: slog.LevelError,
			msg:   "certificate.revoke",
			want:  &auditlog.Event{Type: "certificate.revoke", Actor: "system", Outcome: "FAILURE"},
		},
		{
			name:  "no outcome at WARN is a success",
			level: slog.LevelWarn,
			msg:   "certificate.revoke",
			want:  &auditlog.Event{Type: "certificate.revoke", Actor: "system", Outcome: "SUCCESS"},
		},
		{
			name: "actor attribute wins",
			ctx:  func(ctx context.Context) context.Context { return auditlog.WithActor(ctx, "token:abc") },
			msg:  "device.lifecycle.suspend",
			args: []any{"actor", "attest-sweeper"},
			want: &auditlog.Event{Type: "device.lifecycle.suspend", Actor: "attest-sweeper", Outcome: "SUCCESS"},
		},
		{
			name: "values: slices, times, errors, numbers, stringers, groups",
			msg:  "device.lifecycle.delete",
			args: []any{
				"certificates", []string{"01", "02"},
				"at", at,
				"error", errors.New("boom"),
				"count", 3,
				"ok", true,
				"wait", 1500 * time.Millisecond,
				"hidden", stringer{},
				slog.Group("intune_validate", "status", "OK", "client_request_id", "r1"),
			},
			want: &auditlog.Event{Type: "device.lifecycle.delete", Actor: "system", Outcome: "SUCCESS", Details: map[string]string{
				"certificates":                   `["01","02"]`,
				"at":                             "2026-11-23T18:00:00.000000123Z",
				"error":                          "boom",
				"count":                          "3",
				"ok":                             "true",
				"wait":                           "1.5s",
				"hidden":                         "REDACTED",
				"intuneValidate.status":          "OK",
				"intuneValidate.clientRequestId": "r1",
			}},
		},
		{
			name: "WithAttrs and WithGroup",
			log: func(l *slog.Logger) *slog.Logger {
				return l.With("log", "audit").WithGroup("g").With("a", "1")
			},
			msg:  "certificate_authority.upload",
			args: []any{"target", "ca-1", "b", "2"},
			// target inside a group is a detail, not the event's target.
			want: &auditlog.Event{Type: "certificate_authority.upload", Actor: "system", Outcome: "SUCCESS",
				Details: map[string]string{"log": "audit", "g.a": "1", "g.b": "2", "g.target": "ca-1"}},
		},
		{
			name: "secret-looking keys dropped",
			msg:  "device.integration.reset_secret",
			args: []any{"target", "int-3", "secret_key", "s3cr3t", "password", "pw", "managementHint", "h",
				"client_secret", "cs", "token", "tk", "private_key", "pk", "kek", "k", "platform", "IOS",
				slog.Group("intune", "clientSecret", "cs2")},
			want: &auditlog.Event{Type: "device.integration.reset_secret", Actor: "system", Target: "int-3", Outcome: "SUCCESS",
				Details: map[string]string{"platform": "IOS"}},
		},
		{name: "CA line is no event", msg: "issued", args: []any{"serial", "01"}},
		{name: "sentence is no event", msg: "root key exported"},
		{name: "upper case is no event", msg: "Certificate.Issue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := &memSink{}
			var lines bytes.Buffer
			h := newHandler(t, auditlog.Config{Sink: sink, Next: slog.NewJSONHandler(&lines, &slog.HandlerOptions{Level: slog.LevelError + 4})})
			stop := runUntilClosed(t, h)
			log := slog.New(h)
			if tc.log != nil {
				log = tc.log(log)
			}
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			before := time.Now().UTC()
			log.Log(ctx, tc.level, tc.msg, tc.args...)
			stop()
			got := sink.events()
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("Log(%q) stored %+v, want no event", tc.msg, got[0])
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("Log(%q) stored %d events, want 1", tc.msg, len(got))
			}
			ev := got[0]
			if diff := cmp.Diff(tc.want, ev, cmpopts.IgnoreFields(auditlog.Event{}, "ID", "Time")); diff != "" {
				t.Errorf("Log(%q) event mismatch (-want +got):\n%s", tc.msg, diff)
			}
			if ev.Time.Location() != time.UTC || ev.Time.Before(before) {
				t.Errorf("event time = %v, want UTC, not before %v", ev.Time, before)
			}
			if !auditlog.ValidEventID(ev.ID) || ev.ID[:16] != auditlog.NewEventID(ev.Time)[:16] {
				t.Errorf("event ID = %q, want NewEventID(%v)", ev.ID, ev.Time)
			}
		})
	}
}

// TestTee: every record, event or not, reaches Next unchanged, at Next's
// level; events are stored whatever that level.
func TestTee(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	var lines bytes.Buffer
	h := newHandler(t, auditlog.Config{Sink: sink, Next: slog.NewJSONHandler(&lines, &slog.HandlerOptions{Level: slog.LevelInfo})})
	stop := runUntilClosed(t, h)
	log := slog.New(h).With("log", "audit")
	log.Info("issued", "serial", "01")
	log.Info("certificate.issue", "target", "01", "outcome", "success")
	log.Debug("device.integration.test", "target", "int-1")
	stop()

	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		delete(m, "time")
		got = append(got, m)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "issued", "log": "audit", "serial": "01"},
		{"level": "INFO", "msg": "certificate.issue", "log": "audit", "target": "01", "outcome": "success"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log lines mismatch (-want +got):\n%s", diff)
	}
	var types []string
	for _, e := range sink.events() {
		types = append(types, e.Type)
	}
	if want := []string{"certificate.issue", "device.integration.test"}; !slices.Equal(types, want) {
		t.Errorf("stored event types = %v, want %v (a DEBUG event is stored too)", types, want)
	}
}

// TestBatchSize: a full batch is appended at once, without waiting for the
// interval; the rest follows on Close, in order.
func TestBatchSize(t *testing.T) {
	t.Parallel()
	sink := &memSink{got: make(chan int, 10)}
	h := newHandler(t, auditlog.Config{Sink: sink, BatchSize: 3, FlushInterval: time.Hour})
	stop := runUntilClosed(t, h)
	log := slog.New(h)
	for i := range 7 {
		log.Info("certificate.issue", "target", string(rune('a'+i)))
	}
	for range 2 {
		if n := <-sink.got; n != 3 {
			t.Fatalf("batch of %d, want 3", n)
		}
	}
	stop()
	if got, want := sink.sizes(), []int{3, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
	var targets string
	for _, e := range sink.events() {
		targets += e.Target
	}
	if targets != "abcdefg" {
		t.Errorf("stored targets = %q, want abcdefg (log order)", targets)
	}
}

// TestFlushInterval: a lone event is stored once the interval has passed,
// not before.
func TestFlushInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		sink := &memSink{}
		h := newHandler(t, auditlog.Config{Sink: sink, FlushInterval: 150 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		slog.New(h).Info("token.create", "target", "t1")
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n := len(sink.events()); n != 0 {
			t.Errorf("after 100ms: %d events stored, want 0 (interval 150ms)", n)
		}
		time.Sleep(60 * time.Millisecond)
		synctest.Wait()
		if n := len(sink.events()); n != 1 {
			t.Errorf("after 160ms: %d events stored, want 1", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
}

// TestAfterClose: events logged after Run ended are appended at once, and
// events queued before Run started are flushed by it.
func TestAfterClose(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	h := newHandler(t, auditlog.Config{Sink: sink, FlushInterval: time.Hour})
	log := slog.New(h)
	log.Info("certificate.issue", "target", "before-run")
	stop := runUntilClosed(t, h)
	log.Info("certificate.issue", "target", "while-running")
	stop()
	if n := len(sink.events()); n != 2 {
		t.Fatalf("after Run: %d events, want 2", n)
	}
	log.Info("certificate.issue", "target", "after-run")
	got := sink.events()
	if len(got) != 3 || got[2].Target != "after-run" {
		t.Fatalf("after a late event: %d events, want 3 with the late one last", len(got))
	}
	if err := h.Run(t.Context()); err == nil {
		t.Error("second Run() = nil, want an error")
	}
}

// TestFullQueue: a caller blocks while the queue is full and goes on once
// the batcher makes room; past Config.Wait its event is dropped, counted
// and logged.
func TestFullQueue(t *testing.T) {
	t.Parallel()
	t.Run("blocks until room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &memSink{}
			var c counts
			h := newHandler(t, auditlog.Config{Sink: sink, QueueSize: 1, Wait: 5 * time.Second, Observe: c.observe})
			log := slog.New(h)
			log.Info("certificate.issue", "target", "1") // fills the queue
			logged := make(chan struct{})
			go func() {
				log.Info("certificate.issue", "target", "2")
				close(logged)
			}()
			synctest.Wait()
			select {
			case <-logged:
				t.Fatal("second event returned with a full queue and no batcher, want it blocked")
			default:
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			<-logged
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if n := len(sink.events()); n != 2 || c.get(auditlog.ResultDropped) != 0 {
				t.Errorf("stored %d, dropped %d; want 2 stored, 0 dropped", n, c.get(auditlog.ResultDropped))
			}
		})
	})
	t.Run("drops after wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &memSink{}
			var c counts
			var errs bytes.Buffer
			h := newHandler(t, auditlog.Config{Sink: sink, QueueSize: 1, Wait: 5 * time.Second, Observe: c.observe,
				Logger: slog.New(slog.NewTextHandler(&errs, nil))})
			log := slog.New(h)
			log.Info("certificate.issue", "target", "1")
			start := time.Now()
			log.Info("certificate.issue", "target", "2")
			if waited := time.Since(start); waited != 5*time.Second {
				t.Errorf("blocked %v, want the 5s Wait", waited)
			}
			if c.get(auditlog.ResultDropped) != 1 || !strings.Contains(errs.String(), "audit event dropped") {
				t.Errorf("dropped = %d, log %q; want 1 and an error line", c.get(auditlog.ResultDropped), errs.String())
			}
		})
	})
}

// TestSinkFailure: a failed append is retried (the sink is idempotent by
// ID); a batch that keeps failing is counted and logged.
func TestSinkFailure(t *testing.T) {
	t.Parallel()
	t.Run("retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &memSink{fail: 1}
			var c counts
			h := newHandler(t, auditlog.Config{Sink: sink, Observe: c.observe})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			slog.New(h).Info("certificate.revoke", "target", "01")
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if n := len(sink.events()); n != 1 || c.get(auditlog.ResultStored) != 1 || c.get(auditlog.ResultFailed) != 0 {
				t.Errorf("stored %d (counted %d), failed %d; want 1, 1, 0", n, c.get(auditlog.ResultStored), c.get(auditlog.ResultFailed))
			}
		})
	})
	t.Run("given up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := &memSink{fail: 100}
			var c counts
			var errs bytes.Buffer
			h := newHandler(t, auditlog.Config{Sink: sink, Observe: c.observe, Logger: slog.New(slog.NewTextHandler(&errs, nil))})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			log := slog.New(h)
			log.Info("certificate.revoke", "target", "01")
			log.Info("certificate.revoke", "target", "02")
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if c.get(auditlog.ResultFailed) != 2 || sink.calls != 3 {
				t.Errorf("failed = %d after %d calls, want 2 after 3", c.get(auditlog.ResultFailed), sink.calls)
			}
			if !strings.Contains(errs.String(), "audit events not stored") || !strings.Contains(errs.String(), "events=2") {
				t.Errorf("error log = %q, want the failure with its count", errs.String())
			}
		})
	})
}

// TestConcurrentClose: events logged while Run shuts down are all stored,
// either by the final flush or directly.
func TestConcurrentClose(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	h := newHandler(t, auditlog.Config{Sink: sink, QueueSize: 4, BatchSize: 2})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	log := slog.New(h)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				log.Info("certificate.issue", "target", string(rune('a'+i)), "n", j)
				if i == 0 && j == 10 {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	seen := map[string]bool{}
	for _, e := range sink.events() {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
	if len(seen) != 200 {
		t.Errorf("stored %d distinct events, want 200", len(seen))
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := auditlog.New(auditlog.Config{}); err == nil {
		t.Error("New(no Sink) = nil error, want one")
	}
}
