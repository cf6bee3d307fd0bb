package reqlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddlewareLogsOneWideEvent(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	tick := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	h := Middleware(log, now)(Recover(LimitBody(4)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Add(r.Context(), slog.String(KeyIntegrationID, "int1"))
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/read":
			_, err := r.Body.Read(make([]byte, 10))
			if _, ok := err.(*http.MaxBytesError); !ok {
				http.Error(w, "no limit", http.StatusInternalServerError)
				return
			}
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))))
	for _, tc := range []struct {
		path   string
		status int
	}{{"/ok", http.StatusTeapot}, {"/panic", http.StatusInternalServerError}, {"/read", http.StatusRequestEntityTooLarge}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader("0123456789")))
		if w.Code != tc.status {
			t.Errorf("%s = %d, want %d", tc.path, w.Code, tc.status)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want one per request:\n%s", len(lines), buf.String())
	}
	for i, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev[KeyIntegrationID] != "int1" || ev[KeyStatus] == nil || ev[KeyDuration] == nil {
			t.Errorf("line %d = %v, want integration_id, status and duration", i, ev)
		}
		if i == 1 && (ev[KeyPanic] != "boom" || ev["level"] != "ERROR") {
			t.Errorf("panic line = %v, want panic=boom at ERROR", ev)
		}
	}
}
