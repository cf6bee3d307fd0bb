// Package reqlog carries the one wide event each HTTP request logs: handlers
// and services add attributes to the event in the request context, and the
// middleware logs it once with status and duration. It imports none of
// scepca's packages, so every layer may use it; it must not carry
// dependencies, only request-scoped facts.
package reqlog

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Attribute keys, snake_case, declared in one place.
const (
	KeyRequestID     = "request_id"
	KeyMethod        = "method"
	KeyPath          = "path"
	KeyStatus        = "status"
	KeyDuration      = "duration"
	KeyRemote        = "remote"
	KeyUserAgent     = "user_agent"
	KeyIntegrationID = "integration_id"
	KeyOperation     = "operation"
	KeyMessageType   = "message_type"
	KeyTransactionID = "transaction_id"
	KeyChallenge     = "challenge"
	KeySerial        = "serial"
	KeyFailInfo      = "fail_info"
	KeyPKIStatus     = "pki_status"
	KeyCipher        = "cipher"
	KeyDeviceID      = "device_id"
	KeyPlatform      = "platform"
	KeyManaged       = "managed"
	KeyReason        = "reason"
	KeyError         = "error"
	KeyPanic         = "panic"
	KeyActor         = "actor"

	// Intune delegation: one group per ScepActions call (status, code,
	// client_request_id).
	KeyIntuneValidate = "intune_validate"
	KeyIntuneSuccess  = "intune_success_notification"
	KeyIntuneFailure  = "intune_failure_notification"
)

// Event is the request's wide event. It is safe for concurrent use.
type Event struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

// Add appends attributes to the event.
func (e *Event) Add(attrs ...slog.Attr) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.attrs = append(e.attrs, attrs...)
	e.mu.Unlock()
}

// Attrs returns a copy of the event's attributes.
func (e *Event) Attrs() []slog.Attr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]slog.Attr(nil), e.attrs...)
}

type ctxKey struct{}

// WithEvent returns a context carrying e.
func WithEvent(ctx context.Context, e *Event) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// FromContext returns the request's event, or nil (Add on nil is a no-op).
func FromContext(ctx context.Context) *Event {
	e, _ := ctx.Value(ctxKey{}).(*Event)
	return e
}

// Add adds attributes to the event in ctx, if any.
func Add(ctx context.Context, attrs ...slog.Attr) {
	FromContext(ctx).Add(attrs...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Middleware puts a fresh Event into each request's context and logs it once
// when the handler returns. now is injectable for tests.
func Middleware(log *slog.Logger, now func() time.Time) func(http.Handler) http.Handler {
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			ev := &Event{}
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				attrs := []slog.Attr{
					slog.String(KeyMethod, r.Method),
					slog.String(KeyPath, r.URL.Path),
					slog.Int(KeyStatus, status),
					slog.Duration(KeyDuration, now().Sub(start)),
					slog.String(KeyRemote, r.RemoteAddr),
					slog.String(KeyUserAgent, r.UserAgent()),
				}
				attrs = append(attrs, ev.Attrs()...)
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelError
				}
				log.LogAttrs(r.Context(), level, "request", attrs...)
			}()
			next.ServeHTTP(sw, r.WithContext(WithEvent(r.Context(), ev)))
		})
	}
}

// Recover turns a panic in a handler into a 500 and an error attribute on the
// event, so one bad request never takes the process down. It must wrap
// inside Middleware so the event is logged.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				Add(r.Context(), slog.Any(KeyPanic, v))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// LimitBody caps request bodies at n bytes (http.MaxBytesReader).
func LimitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}
