package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/scepca/scepca/internal/reqlog"
)

// Problem is an RFC 9457 problem document, the body of every 4xx and 5xx of
// the admin and verifier APIs.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// problemError is an error that carries the problem the client sees.
type problemError struct {
	status int
	detail string
	err    error
}

func (e *problemError) Error() string {
	if e.err != nil {
		return e.detail + ": " + e.err.Error()
	}
	return e.detail
}

func (e *problemError) Unwrap() error { return e.err }

func problemf(status int, format string, args ...any) error {
	return &problemError{status: status, detail: fmt.Sprintf(format, args...)}
}

// writeProblem is the one place where API errors become responses. Internal
// errors give a generic 500; their text goes only to the request log.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	status, detail := http.StatusInternalServerError, "internal error"
	if pe, ok := errors.AsType[*problemError](err); ok {
		status, detail = pe.status, pe.detail
	}
	reqlog.Add(r.Context(), slog.String(reqlog.KeyError, err.Error()))
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scepca"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON body strictly: unknown fields and trailing data
// are errors.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &problemError{status: http.StatusRequestEntityTooLarge, detail: "request body too large", err: err}
		}
		return &problemError{status: http.StatusBadRequest, detail: "invalid JSON body: " + jsonErrorDetail(err), err: err}
	}
	if dec.More() {
		return problemf(http.StatusBadRequest, "invalid JSON body: trailing data")
	}
	return nil
}

// decodeOptionalJSON is decodeJSON for a body that may be absent: an empty
// body leaves v as it is.
func decodeOptionalJSON(r *http.Request, v any) error {
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decodeJSON(r, v)
}

func jsonErrorDetail(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	return err.Error()
}
