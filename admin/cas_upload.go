package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/store"
)

// Bring your own CA (DESIGN.md §1.4, §2 "Trust"): an administrator uploads
// the intermediate that issues their devices' attestation certificates, and
// the verifier trusts certificates it issued (checking its CRL). The body
// is the certificate itself, PEM or DER, as `curl --data-binary @ca.pem`
// sends it, whatever the Content-Type. Bundles, PKCS #7, PKCS #12/PFX,
// keys, CRLs, CSRs, non-CA certificates and garbage are refused with a 400
// that names what was sent.

// maxCAUpload bounds an uploaded certificate.
const maxCAUpload = 64 << 10

// OIDs that identify what a DER upload is when it is not a certificate.
var (
	oidPKCS7Data       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7SignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// pemAdvice names what a PEM block of a type other than CERTIFICATE is.
var pemAdvice = map[string]string{
	"PKCS7":                   "a PKCS #7 bundle; extract the intermediate with `openssl pkcs7 -print_certs -in bundle.p7b` and upload that one certificate",
	"CMS":                     "a PKCS #7 bundle; extract the intermediate with `openssl pkcs7 -print_certs -in bundle.p7b` and upload that one certificate",
	"PRIVATE KEY":             "a private key; never upload keys: scepca needs only the CA certificate",
	"RSA PRIVATE KEY":         "a private key; never upload keys: scepca needs only the CA certificate",
	"EC PRIVATE KEY":          "a private key; never upload keys: scepca needs only the CA certificate",
	"ENCRYPTED PRIVATE KEY":   "a private key; never upload keys: scepca needs only the CA certificate",
	"X509 CRL":                "a CRL, not a certificate; the verifier fetches CRLs itself from the distribution points of device certificates",
	"CERTIFICATE REQUEST":     "a certificate request (CSR), not a certificate",
	"NEW CERTIFICATE REQUEST": "a certificate request (CSR), not a certificate",
	"TRUSTED CERTIFICATE":     "an OpenSSL TRUSTED CERTIFICATE; convert it with `openssl x509 -in ca.pem -out plain.pem` and upload that",
	"PUBLIC KEY":              "a public key, not a certificate",
}

func badUpload(format string, args ...any) error {
	return problemf(http.StatusBadRequest, "upload: "+format, args...)
}

// parseUploadedCA returns the one certificate in body, or a 400 problem
// naming what body is instead.
func parseUploadedCA(body []byte) (*x509.Certificate, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, badUpload("empty body: send the intermediate CA certificate, PEM or DER (curl --data-binary @ca.pem)")
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return parsePEMUpload(trimmed)
	}
	cert, err := x509.ParseCertificate(body)
	if err == nil {
		return cert, nil
	}
	switch what := classifyDER(body); what {
	case "":
		if looksLikeBase64(trimmed) {
			return nil, badUpload("the body looks like base64 without PEM armour; send PEM (with its BEGIN CERTIFICATE line) or raw DER")
		}
		return nil, badUpload("not a certificate: the body is neither PEM nor a DER X.509 certificate")
	default:
		return nil, badUpload("%s", what)
	}
}

func parsePEMUpload(data []byte) (*x509.Certificate, error) {
	var certs []*pem.Block
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			if advice, ok := pemAdvice[blk.Type]; ok {
				return nil, badUpload("the PEM holds %s", advice)
			}
			return nil, badUpload("the PEM holds a %q block, not a CERTIFICATE", blk.Type)
		}
		certs = append(certs, blk)
	}
	switch {
	case len(certs) == 0:
		return nil, badUpload("malformed PEM: no block decodes")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, badUpload("malformed PEM: data after the last block")
	case len(certs) > 1:
		return nil, badUpload("the PEM holds %d certificates; upload one intermediate at a time", len(certs))
	}
	cert, err := x509.ParseCertificate(certs[0].Bytes)
	if err != nil {
		return nil, badUpload("the PEM CERTIFICATE block does not parse as an X.509 certificate")
	}
	return cert, nil
}

// classifyDER names a DER structure that is not a certificate, or "".
func classifyDER(der []byte) string {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return ""
	}
	// PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, ... }
	probe := seq
	var version int64
	var authSafe cryptobyte.String
	var oid asn1.ObjectIdentifier
	if probe.ReadASN1Integer(&version) && version == 3 && probe.ReadASN1(&authSafe, cbasn1.SEQUENCE) && authSafe.ReadASN1ObjectIdentifier(&oid) &&
		(oid.Equal(oidPKCS7Data) || oid.Equal(oidPKCS7SignedData)) {
		return "a PKCS #12/PFX file, which carries a private key; never upload keys: export only the intermediate's certificate (`openssl pkcs12 -in file.p12 -nokeys -out certs.pem`, then upload the intermediate's CERTIFICATE block alone)"
	}
	// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
	probe = seq
	if probe.ReadASN1ObjectIdentifier(&oid) && oid.Equal(oidPKCS7SignedData) {
		return "a PKCS #7 bundle; extract the intermediate with `openssl pkcs7 -inform DER -print_certs -in bundle.p7b` and upload that one certificate"
	}
	if _, err := x509.ParseRevocationList(der); err == nil {
		return "a CRL, not a certificate; the verifier fetches CRLs itself from the distribution points of device certificates"
	}
	if _, err := x509.ParseCertificateRequest(der); err == nil {
		return "a certificate request (CSR), not a certificate"
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return "a private key; never upload keys: scepca needs only the CA certificate"
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return "a private key; never upload keys: scepca needs only the CA certificate"
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return "a private key; never upload keys: scepca needs only the CA certificate"
	}
	return ""
}

func looksLikeBase64(b []byte) bool {
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=', c == '\n', c == '\r':
		default:
			return false
		}
	}
	return len(b) >= 64
}

// checkUploadedCA refuses certificates that cannot issue device
// certificates.
func (a *API) checkUploadedCA(cert *x509.Certificate) error {
	now := a.now()
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return badUpload("not a CA certificate (no basicConstraints CA:TRUE): upload the intermediate that issued your device certificates, not a device certificate")
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return badUpload("the CA certificate's key usage lacks keyCertSign, so it cannot have issued certificates")
	case now.After(cert.NotAfter):
		return badUpload("the CA certificate expired at %s", cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

// uploadCA stores an uploaded intermediate as an UPLOADED record (no key).
func (a *API) uploadCA(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCAUpload+1))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &problemError{status: http.StatusRequestEntityTooLarge, detail: "request body too large", err: mbe}
	}
	if err != nil {
		return problemf(http.StatusBadRequest, "reading the body failed")
	}
	if len(body) > maxCAUpload {
		return problemf(http.StatusRequestEntityTooLarge, "upload: larger than %d bytes; a CA certificate is a few kilobytes", maxCAUpload)
	}
	cert, err := parseUploadedCA(body)
	if err != nil {
		return err
	}
	if err := a.checkUploadedCA(cert); err != nil {
		return err
	}
	ctx := r.Context()
	existing, err := a.store.ListCAs(ctx)
	if err != nil {
		return err
	}
	for _, c := range existing {
		if bytes.Equal(c.CertDER, cert.Raw) {
			return problemf(http.StatusConflict, "this certificate is already present as certificate authority %q (%s)", c.ID, c.Role)
		}
	}
	rec := &store.CA{
		Role:      store.RoleUploaded,
		Subject:   cert.Subject.String(),
		CertDER:   cert.Raw,
		Active:    true,
		CreatedAt: a.now().UTC(),
	}
	for range 3 {
		if rec.ID, err = newCAID(); err != nil {
			return err
		}
		err = a.store.CreateCA(ctx, rec)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("admin: upload CA: %w", err)
	}
	if a.attest != nil {
		a.attest.TrustChanged()
	}
	sum := sha256.Sum256(cert.Raw)
	a.audit.InfoContext(ctx, "certificate_authority.upload", "target", rec.ID, "subject", rec.Subject,
		"sha256", strings.ToUpper(fmt.Sprintf("%x", sum)), "outcome", "success")
	v, err := caView(rec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/certificate-authorities/"+rec.ID)
	return writeJSON(w, http.StatusCreated, v)
}

// deleteCA removes an uploaded intermediate; the verifier stops trusting
// it at once. Our own intermediates go through the rotation lifecycle
// (deleteIntermediate); the root and RAs are refused.
func (a *API) deleteCA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	c, err := a.store.GetCA(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no certificate authority %q", id)
	}
	if err != nil {
		return err
	}
	if c.Role == store.RoleIntermediate {
		return a.deleteIntermediate(w, r, c)
	}
	if c.Role != store.RoleUploaded {
		return problemf(http.StatusConflict, "certificate authority %q is scepca's own %s; only uploaded intermediates and our NEXT or RETIRED intermediates can be deleted", id, c.Role)
	}
	if err := a.store.DeleteCA(ctx, id); errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no certificate authority %q", id)
	} else if err != nil {
		return err
	}
	if a.attest != nil {
		a.attest.TrustChanged()
	}
	a.audit.InfoContext(ctx, "certificate_authority.delete", "target", id, "subject", c.Subject, "outcome", "success")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newCAID returns a random, URL-safe ID for an uploaded CA (80 bits).
func newCAID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ca" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}
