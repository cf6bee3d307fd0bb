package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// fakeLifecycle accepts every rotation; it checks the options it is given.
type fakeLifecycle struct{ t *testing.T }

func (f fakeLifecycle) Rotate(_ context.Context, opts ca.RotateOptions) (*store.CA, error) {
	switch opts.KeyType {
	case "", ca.KeyTypeRSA, ca.KeyTypeECDSA:
	default:
		f.t.Fatalf("Rotate() reached with key type %q", opts.KeyType)
	}
	return nil, ca.ErrBadRootKey // a 400 for the handler: no record to show
}

func (fakeLifecycle) Activate(context.Context, string, string) (*store.CA, error) {
	return nil, store.ErrNotFound
}

func (fakeLifecycle) DeleteIntermediate(context.Context, string, bool, string) error {
	return store.ErrNotFound
}

// FuzzRotateBody: any body of POST …/rotate is refused with a 400 or 413
// problem or reaches Rotate with a valid key type; never a 500 or a panic.
func FuzzRotateBody(f *testing.F) {
	for _, seed := range []string{
		"", "{}", `{"keyType":"rsa"}`, `{"keyType":"ecdsa","rootKey":"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"}`,
		`{"keyType":"dsa"}`, `{"keyTyp":"rsa"}`, `{} {}`, `[]`, `{"rootKey":1}`, "\x00", strings.Repeat("{", 1000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		a := &API{ca: fakeLifecycle{t: t}, now: time.Now}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/certificate-authorities/rotate", strings.NewReader(body))
		rec := httptest.NewRecorder()
		err := a.rotateCA(rec, req)
		if err == nil {
			t.Fatalf("rotateCA(%q) = nil, want the fake's refusal", body)
		}
		writeProblem(rec, req, err)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("rotateCA(%q) = %d, want 400 or 413", body, rec.Code)
		}
	})
}
