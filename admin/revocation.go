package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/reqlog"
)

// maxOCSPRequest caps an OCSP request; one for a single certificate is
// about 100 bytes.
const maxOCSPRequest = 16 << 10

// RevocationPublisher is what the public revocation routes serve;
// *ca.Revocation implements it.
type RevocationPublisher interface {
	CRL(ctx context.Context, caID string) (*ca.CRL, error)
	OCSP(ctx context.Context, req []byte) ([]byte, error)
	// Refresh bounds how long a CRL is served from cache; it is the
	// answers' max-age.
	Refresh() time.Duration
}

// Revocation serves the public revocation routes that issued certificates
// point to (CRL distribution point and OCSP AIA): GET /crl/{caID}.crl and
// OCSP by GET /ocsp/{base64 request} and POST /ocsp (RFC 6960, Appendix
// A.1). They need no token: relying parties fetch them.
type Revocation struct {
	pub RevocationPublisher
}

// NewRevocation returns the handler of the public revocation routes.
func NewRevocation(pub RevocationPublisher) (*Revocation, error) {
	if pub == nil {
		return nil, errors.New("admin: revocation: nil publisher")
	}
	return &Revocation{pub: pub}, nil
}

// Register adds the revocation routes to mux. Other methods on them, and
// other paths under /crl/, answer a problem document.
func (h *Revocation) Register(mux *http.ServeMux) {
	mux.Handle("GET /crl/{file}", serveAPI(h.getCRL))
	mux.Handle("/crl/", serveAPI(func(w http.ResponseWriter, r *http.Request) error {
		if rest := strings.TrimPrefix(r.URL.Path, "/crl/"); strings.HasSuffix(rest, ".crl") && !strings.Contains(rest, "/") {
			w.Header().Set("Allow", "GET, HEAD")
			return problemf(http.StatusMethodNotAllowed, "a CRL is fetched with GET")
		}
		return problemf(http.StatusNotFound, "no such CRL: the path is /crl/{caID}.crl")
	}))
	mux.HandleFunc("POST /ocsp", h.postOCSP)
	mux.HandleFunc("GET /ocsp/{request...}", h.getOCSP)
	notAllowed := serveAPI(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", "GET, POST")
		return problemf(http.StatusMethodNotAllowed, "OCSP is POST /ocsp with a DER request, or GET /ocsp/{base64 request}")
	})
	mux.Handle("/ocsp", notAllowed)
	mux.Handle("/ocsp/{request...}", notAllowed)
}

// serveAPI adapts a handler that returns errors: they become problem
// documents.
func serveAPI(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeProblem(w, r, err)
		}
	})
}

// getCRL serves the CRL of CA {caID} (DER, application/pkix-crl) with
// Last-Modified (its thisUpdate) and a strong ETag, so conditional requests
// get 304; max-age is the refresh interval.
func (h *Revocation) getCRL(w http.ResponseWriter, r *http.Request) error {
	file := r.PathValue("file")
	id, ok := strings.CutSuffix(file, ".crl")
	if !ok || id == "" {
		return problemf(http.StatusNotFound, "no such CRL %q: the path is /crl/{caID}.crl", file)
	}
	c, err := h.pub.CRL(r.Context(), id)
	if errors.Is(err, ca.ErrUnknownCA) {
		return &problemError{status: http.StatusNotFound, detail: fmt.Sprintf("no issuing certificate authority %q", id), err: err}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("ETag", c.ETag)
	w.Header().Set("Cache-Control", maxAge(h.pub.Refresh()))
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
	return nil
}

func maxAge(d time.Duration) string {
	return fmt.Sprintf("public, max-age=%d", int(d/time.Second))
}

// postOCSP answers an OCSP request sent as the body of a POST.
func (h *Revocation) postOCSP(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
	if err != nil {
		writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: read body: %v", ca.ErrOCSPMalformed, err), "")
		return
	}
	h.answerOCSP(w, r, der, "no-store")
}

// getOCSP answers an OCSP request sent in the path: the base64 DER request,
// URL-encoded (RFC 6960, Appendix A.1). Standard and URL-safe alphabets
// are accepted, padded or not. A request path with a raw "//" (base64 with
// '/' left unencoded) is cleaned and redirected by the HTTP mux before it
// gets here, so clients must percent-encode '/', as the RFC says.
func (h *Revocation) getOCSP(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("request")
	var der []byte
	err := errors.New("empty request")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if s == "" {
			break
		}
		if der, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: base64: %v", ca.ErrOCSPMalformed, err), "")
		return
	}
	h.answerOCSP(w, r, der, maxAge(h.pub.Refresh()))
}

// answerOCSP writes the OCSP answer to der. Malformed and unauthorized
// requests get their OCSP error response with HTTP 200, as OCSP clients
// expect; an internal error gets internalError with HTTP 500. Successful
// answers carry cacheControl.
func (h *Revocation) answerOCSP(w http.ResponseWriter, r *http.Request, der []byte, cacheControl string) {
	resp, err := h.pub.OCSP(r.Context(), der)
	if err != nil {
		cacheControl = ""
	}
	writeOCSP(w, r, resp, err, cacheControl)
}

func writeOCSP(w http.ResponseWriter, r *http.Request, resp []byte, err error, cacheControl string) {
	status := http.StatusOK
	if err != nil {
		reqlog.Add(r.Context(), slog.String(reqlog.KeyError, err.Error()))
		if !errors.Is(err, ca.ErrOCSPMalformed) && !errors.Is(err, ca.ErrOCSPUnauthorized) {
			status = http.StatusInternalServerError
		}
	}
	if cacheControl == "" {
		cacheControl = "no-store"
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_, _ = w.Write(resp) //nolint:gosec // G705 false positive: a DER OCSP response we signed, sent as application/ocsp-response
}
