package auditlog

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcomes of an event; the same strings as store.OutcomeSuccess and
// store.OutcomeFailure.
const (
	OutcomeSuccess = "SUCCESS"
	OutcomeFailure = "FAILURE"
)

// Event is one audit event. It has exactly the fields of store.Event, so
// that cmd converts one into the other ((*store.Event)(e)) without copying.
type Event struct {
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Type    string            `json:"eventType"`
	Actor   string            `json:"actor"`
	Target  string            `json:"target,omitempty"`
	Outcome string            `json:"outcome"`
	Details map[string]string `json:"details,omitempty"`
}

// Sink stores events in one write; an event whose ID is already stored is
// skipped, so a retried append is not a duplicate (store.AuditStore).
type Sink interface {
	AppendEvents(ctx context.Context, events []*Event) error
}

// Results passed to Config.Observe.
const (
	// ResultStored counts events appended to the sink.
	ResultStored = "stored"
	// ResultFailed counts events the sink refused after every retry.
	ResultFailed = "failed"
	// ResultDropped counts events that found the queue full for longer
	// than Config.Wait.
	ResultDropped = "dropped"
)

// Config configures a Handler.
type Config struct {
	// Sink receives the events; required.
	Sink Sink
	// Next receives every record unchanged (the JSON audit lines); nil
	// logs nothing.
	Next slog.Handler
	// Logger reports events that could not be stored; it must not be the
	// audit logger itself. Default: discard.
	Logger *slog.Logger
	// FlushInterval bounds how long a queued event waits for its batch;
	// default 150 ms.
	FlushInterval time.Duration
	// BatchSize flushes a batch early once it holds this many events;
	// default 256.
	BatchSize int
	// QueueSize bounds the events waiting for the batcher; default 8192.
	QueueSize int
	// Wait is how long a caller blocks on a full queue before its event
	// is dropped (counted and logged, never silently); default 5 s.
	Wait time.Duration
	// Observe is told how many events were stored, failed or dropped
	// (metrics); default none.
	Observe func(result string, n int)
}

// Defaults of Config.
const (
	DefaultFlushInterval = 150 * time.Millisecond
	DefaultBatchSize     = 256
	DefaultQueueSize     = 8192
	DefaultWait          = 5 * time.Second
)

// appendTimeout bounds one append to the sink; appendAttempts is how often
// a batch is tried before it counts as failed.
const (
	appendTimeout  = 10 * time.Second
	appendAttempts = 3
)

// eventType is the form of an event type: lower-case, dot-separated words,
// at least two ("certificate.issue"). Other audit records (the CA's
// "issuing" and "issued" lines around each signature) stay log lines.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

// IsEventType reports whether msg names an event type, so that a record
// with this message becomes a stored event.
func IsEventType(msg string) bool { return len(msg) <= 128 && eventType.MatchString(msg) }

// Handler is the audit logger's slog.Handler: it passes each record to
// Config.Next and queues every record whose message is an event type as an
// Event for the batcher (Run). Enabled is always true: audit events are
// stored whatever the log level.
type Handler struct {
	b      *batcher
	next   slog.Handler
	attrs  []slog.Attr // from WithAttrs, each already inside its groups
	groups []string    // from WithGroup
}

// New validates cfg and returns a Handler. Events queue until Run runs.
func New(cfg Config) (*Handler, error) {
	if cfg.Sink == nil {
		return nil, errors.New("auditlog: Sink is required")
	}
	b := &batcher{
		sink:     cfg.Sink,
		log:      cfg.Logger,
		interval: cfg.FlushInterval,
		size:     cfg.BatchSize,
		wait:     cfg.Wait,
		observe:  cfg.Observe,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.interval <= 0 {
		b.interval = DefaultFlushInterval
	}
	if b.size <= 0 {
		b.size = DefaultBatchSize
	}
	if b.wait <= 0 {
		b.wait = DefaultWait
	}
	if b.observe == nil {
		b.observe = func(string, int) {}
	}
	queue := cfg.QueueSize
	if queue <= 0 {
		queue = DefaultQueueSize
	}
	b.queue = make(chan *Event, queue)
	return &Handler{b: b, next: cfg.Next}, nil
}

// Enabled reports true: every audit record is stored.
func (h *Handler) Enabled(context.Context, slog.Level) bool { return true }

// Handle writes r to Next and queues its event. It blocks only while the
// queue is full, at most Config.Wait.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	var ev *Event
	if IsEventType(r.Message) {
		ev = h.event(ctx, r)
	}
	var errs []error
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		errs = append(errs, h.next.Handle(ctx, r))
	}
	if ev != nil {
		errs = append(errs, h.b.enqueue(ctx, ev))
	}
	return errors.Join(errs...)
}

// WithAttrs returns a Handler whose events carry attrs too.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := h.clone()
	if h.next != nil {
		h2.next = h.next.WithAttrs(attrs)
	}
	for _, a := range attrs {
		h2.attrs = append(h2.attrs, nest(h.groups, a))
	}
	return h2
}

// WithGroup returns a Handler whose later attributes are inside group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := h.clone()
	if h.next != nil {
		h2.next = h.next.WithGroup(name)
	}
	h2.groups = append(h2.groups, name)
	return h2
}

func (h *Handler) clone() *Handler {
	return &Handler{
		b:      h.b,
		next:   h.next,
		attrs:  append([]slog.Attr(nil), h.attrs...),
		groups: append([]string(nil), h.groups...),
	}
}

// nest wraps a in groups, innermost last.
func nest(groups []string, a slog.Attr) slog.Attr {
	for i := len(groups) - 1; i >= 0; i-- {
		a = slog.Attr{Key: groups[i], Value: slog.GroupValue(a)}
	}
	return a
}

// event builds r's event: Type = message, Actor from ctx, Target and
// Outcome from the top-level attributes "target" and "outcome", the rest
// flattened into Details (secret-looking keys dropped).
func (h *Handler) event(ctx context.Context, r slog.Record) *Event {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	t = t.UTC()
	d := newDetails()
	for _, a := range h.attrs {
		d.add("", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		d.add("", nest(h.groups, a))
		return true
	})
	ev := &Event{
		ID:      NewEventID(t),
		Time:    t,
		Type:    r.Message,
		Actor:   ActorFrom(ctx),
		Target:  d.target,
		Outcome: outcomeOf(d, r.Level),
	}
	if d.actor != "" {
		ev.Actor = d.actor
	}
	if len(d.m) > 0 {
		ev.Details = d.m
	}
	return ev
}

// outcomeOf normalises the "outcome" attribute: "success" and "failure"
// (any case) map to SUCCESS and FAILURE; another value is a FAILURE whose
// value is kept as the detail "result"; without the attribute, an ERROR
// record is a FAILURE and anything else a SUCCESS.
func outcomeOf(d *details, level slog.Level) string {
	switch {
	case !d.hasOutcome:
		if level >= slog.LevelError {
			return OutcomeFailure
		}
		return OutcomeSuccess
	case strings.EqualFold(d.outcome, "success"):
		return OutcomeSuccess
	case strings.EqualFold(d.outcome, "failure"):
		return OutcomeFailure
	}
	if _, taken := d.m["result"]; !taken {
		d.m["result"] = d.outcome
	}
	return OutcomeFailure
}

// batcher queues events and appends them to the sink in batches.
type batcher struct {
	sink     Sink
	log      *slog.Logger
	interval time.Duration
	size     int
	wait     time.Duration
	observe  func(result string, n int)
	queue    chan *Event
	running  atomic.Bool

	mu      sync.Mutex
	closed  bool          // Run has stopped taking events: append directly
	senders int           // callers between the closed check and their send
	idle    chan struct{} // closed when senders drops to zero after closed
}

// enqueue puts ev on the queue, waiting at most b.wait for room. After Run
// has ended it appends ev at once instead.
func (b *batcher) enqueue(ctx context.Context, ev *Event) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.appendNow(ctx, []*Event{ev})
	}
	b.senders++
	b.mu.Unlock()
	defer b.sent()

	select {
	case b.queue <- ev:
		return nil
	default:
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	select {
	case b.queue <- ev:
		return nil
	case <-timer.C:
	}
	b.observe(ResultDropped, 1)
	b.log.ErrorContext(ctx, "audit event dropped: the event queue stayed full; the audit log line above is its only record",
		"event_id", ev.ID, "event_type", ev.Type, "queue", cap(b.queue), "waited", b.wait)
	return errors.New("auditlog: queue full, event dropped")
}

// sent ends an enqueue; the last sender after close wakes Run's drain.
func (b *batcher) sent() {
	b.mu.Lock()
	b.senders--
	if b.closed && b.senders == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
	b.mu.Unlock()
}

// Run appends queued events to the sink: every Config.FlushInterval, or
// as soon as Config.BatchSize events wait. When ctx ends it stops taking
// events, flushes everything queued and returns nil; events logged after
// that are appended one by one as they come. Run runs once.
func (h *Handler) Run(ctx context.Context) error {
	b := h.b
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("auditlog: Run called twice")
	}
	ticker := time.NewTicker(b.interval)
	defer ticker.Stop()
	var batch []*Event
	for {
		select {
		case ev := <-b.queue:
			batch = append(batch, ev)
			if len(batch) >= b.size {
				b.flush(ctx, batch)
				batch = nil
			}
		case <-ticker.C:
			if len(batch) > 0 {
				b.flush(ctx, batch)
				batch = nil
			}
		case <-ctx.Done():
			batch = b.drain(batch)
			for len(batch) > 0 {
				n := min(len(batch), b.size)
				b.flush(ctx, batch[:n])
				batch = batch[n:]
			}
			return nil
		}
	}
}

// drain closes the queue to new events and returns batch plus everything
// queued, including events of callers that were already sending.
func (b *batcher) drain(batch []*Event) []*Event {
	b.mu.Lock()
	b.closed = true
	var idle chan struct{}
	if b.senders > 0 {
		idle = make(chan struct{})
		b.idle = idle
	}
	b.mu.Unlock()
	if idle != nil {
	wait:
		for {
			select {
			case ev := <-b.queue:
				batch = append(batch, ev)
			case <-idle:
				break wait
			}
		}
	}
	for {
		select {
		case ev := <-b.queue:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
}

// flush appends batch, retrying: the sink skips IDs it already has, so a
// retry after a lost answer stores no duplicate. It outlives ctx (the
// events exist; storing them is the point) but each try is bounded.
func (b *batcher) flush(ctx context.Context, batch []*Event) {
	ctx = context.WithoutCancel(ctx)
	var err error
	for attempt := range appendAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		actx, cancel := context.WithTimeout(ctx, appendTimeout)
		err = b.sink.AppendEvents(actx, batch)
		cancel()
		if err == nil {
			b.observe(ResultStored, len(batch))
			return
		}
	}
	b.failed(ctx, batch, err)
}

// appendNow stores events at once (after Run ended), once.
func (b *batcher) appendNow(ctx context.Context, events []*Event) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	if err := b.sink.AppendEvents(actx, events); err != nil {
		b.failed(ctx, events, err)
		return err
	}
	b.observe(ResultStored, len(events))
	return nil
}

func (b *batcher) failed(ctx context.Context, batch []*Event, err error) {
	b.observe(ResultFailed, len(batch))
	b.log.ErrorContext(ctx, "audit events not stored; the audit log lines are their only record",
		"events", len(batch), "first_event_id", batch[0].ID, "last_event_id", batch[len(batch)-1].ID, "error", err)
}
