package scep

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Content types (RFC 8894 §4).
const (
	contentTypeCACert   = "application/x-x509-ca-cert"
	contentTypeCARACert = "application/x-x509-ca-ra-cert"
	contentTypeNextCA   = "application/x-x509-next-ca-cert"
	contentTypePKI      = "application/x-pki-message"
)

// Handler serves /scep/{integrationID} (also with a trailing slash and
// /pkiclient.exe) for GET and POST, dispatching on ?operation=.
type Handler struct {
	svc *Service
}

// NewHandler returns the HTTP handler for svc.
func NewHandler(svc *Service) *Handler {
	return &Handler{svc: svc}
}

// Register adds the SCEP routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, p := range []string{"/scep/{id}", "/scep/{id}/{$}", "/scep/{id}/pkiclient.exe"} {
		mux.Handle("GET "+p, h)
		mux.Handle("POST "+p, h)
	}
}

// httpError is an answer given before a pkiMessage can be read.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		status, msg := http.StatusInternalServerError, "internal error"
		if he, ok := errors.AsType[*httpError](err); ok {
			status, msg = he.status, he.msg
		}
		reqlog.Add(r.Context(), slog.String(reqlog.KeyError, err.Error()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		fmt.Fprintln(w, msg)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	reqlog.Add(ctx, slog.String(reqlog.KeyIntegrationID, id))
	integ, err := h.svc.store.GetIntegration(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && integ.Platform != store.PlatformDesktop) {
		return &httpError{status: http.StatusNotFound, msg: "unknown SCEP endpoint"}
	}
	if err != nil {
		return err
	}
	op := r.URL.Query().Get("operation")
	reqlog.Add(ctx, slog.String(reqlog.KeyOperation, op))
	if integ.Deleted() && op != "PKIOperation" {
		// A deleted integration's endpoint is gone, but a client still
		// enrolling gets a signed FAILURE (badRequest), not a bare 404.
		return &httpError{status: http.StatusNotFound, msg: "unknown SCEP endpoint"}
	}
	switch op {
	case "":
		// Reachability probes (Workspace ONE's TEST CONNECTION) see no error.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := fmt.Fprintf(w, "scepca SCEP endpoint for integration %s\n", integ.ID) //nolint:gosec // G705 false positive: the ID of a stored integration, sent as text/plain
		return err
	case "GetCACaps":
		w.Header().Set("Content-Type", "text/plain")
		_, err := io.WriteString(w, Capabilities(integ, len(h.svc.ca.Next()) > 0))
		return err
	case "GetCACert":
		return h.caCert(w, integ)
	case "GetNextCACert":
		return h.nextCACert(w)
	case "PKIOperation":
		return h.pkiOperation(w, r, integ)
	}
	return &httpError{status: http.StatusBadRequest, msg: "unknown operation"}
}

// Capabilities is the GetCACaps body for integ: exactly what is enforced
// (PROTOCOLS.md §1.2), LF-terminated. nextCA: a successor CA is staged, so
// GetNextCACert is advertised (RFC 8894 §3.5.2).
func Capabilities(integ *store.Integration, nextCA bool) string {
	caps := []string{"POSTPKIOperation", "SHA-1", "SHA-256", "SHA-512", "AES"}
	if min, ok := minStrength(integ.MinCipher); !ok || min <= strength3DES {
		caps = append(caps, "DES3")
	}
	caps = append(caps, "SCEPStandard")
	if integ.Renewal {
		caps = append(caps, "Renewal")
	}
	if nextCA {
		caps = append(caps, "GetNextCACert")
	}
	return strings.Join(caps, "\n") + "\n"
}

// nextCACert answers GetNextCACert while a rotation is staged (RFC 8894
// §4.7): a SignedData signed by the current CA/RA key whose content is a
// degenerate certs-only SignedData of the successor intermediate and its
// RA, as application/x-x509-next-ca-cert. Without a successor it is 404.
func (h *Handler) nextCACert(w http.ResponseWriter) error {
	next := h.svc.ca.Next()
	if len(next) == 0 {
		return &httpError{status: http.StatusNotFound, msg: "no successor CA certificate is staged"}
	}
	inner, err := degenerate(next, nil)
	if err != nil {
		return err
	}
	cert, key := h.svc.ca.Recipient()
	body, err := signData(inner, cert, key)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentTypeNextCA)
	_, err = w.Write(body)
	return err
}

// caCert answers GetCACert; the message parameter is ignored (Apple sends
// the payload name, certmonger "0").
func (h *Handler) caCert(w http.ResponseWriter, integ *store.Integration) error {
	chain := h.svc.ca.Chain()
	withRA := len(chain) > 2 // [RA, intermediate, root]
	if !withRA && integ.CAChain != store.CAChainIssuerAndChain {
		w.Header().Set("Content-Type", contentTypeCACert)
		_, err := w.Write(h.svc.ca.Intermediate().Raw)
		return err
	}
	certs := chain
	if integ.CAChain != store.CAChainIssuerAndChain {
		certs = chain[:2] // RA and issuing CA
	}
	body, err := degenerate(certs, nil)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentTypeCARACert)
	_, err = w.Write(body)
	return err
}

func (h *Handler) pkiOperation(w http.ResponseWriter, r *http.Request, integ *store.Integration) error {
	var body []byte
	var err error
	if r.Method == http.MethodPost {
		body, err = io.ReadAll(r.Body)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &httpError{status: http.StatusRequestEntityTooLarge, msg: "request body too large", err: err}
		}
		if err != nil {
			return &httpError{status: http.StatusBadRequest, msg: "cannot read request body", err: err}
		}
	} else {
		body, err = DecodeGETMessage(r.URL)
		if err != nil {
			return &httpError{status: http.StatusBadRequest, msg: "message is not valid base64", err: err}
		}
	}
	if len(body) == 0 {
		return &httpError{status: http.StatusBadRequest, msg: "empty pkiMessage"}
	}
	out, err := h.svc.PKIOperation(r.Context(), integ, body)
	if errors.Is(err, errUnparsable) {
		return &httpError{status: http.StatusBadRequest, msg: "malformed pkiMessage", err: err}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentTypePKI)
	_, err = w.Write(out) //nolint:gosec // G705 false positive: a CertRep we built and signed, sent as application/x-pki-message
	return err
}

// DecodeGETMessage returns the pkiMessage of a GET PKIOperation. The value is
// std base64, percent-encoded; macOS percent-encodes only '=' and leaves '+'
// raw, which form decoding turns into a space, so on failure the raw query
// is percent-decoded without the '+' rule and tried again (smallstep's
// weirdMacOSCase). Line breaks and missing padding are tolerated.
func DecodeGETMessage(u *url.URL) ([]byte, error) {
	msg := u.Query().Get("message")
	if msg == "" {
		return nil, errors.New("no message parameter")
	}
	b, err := decodeBase64(msg)
	if err == nil {
		return b, nil
	}
	raw, ok := rawQueryValue(u.RawQuery, "message")
	if !ok {
		return nil, err
	}
	unescaped, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return nil, err
	}
	return decodeBase64(unescaped)
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

func rawQueryValue(rawQuery, key string) (string, bool) {
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

const strength3DES = cms.Strength3DES

// minStrength parses an integration's minimum cipher; ok is false when none
// is set (everything accepted).
func minStrength(s string) (cms.Strength, bool) {
	if s == "" {
		return 0, false
	}
	st, err := cms.ParseStrength(s)
	if err != nil {
		return 0, false
	}
	return st, true
}
