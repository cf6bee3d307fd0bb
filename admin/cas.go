package admin

import (
	"crypto/sha1" //nolint:gosec // SHA-1 thumbprints are what Windows' CAThumbprint and Intune ask for, not a security function here.
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/scepca/scepca/store"
)

// CertificateAuthority is a CA as the API shows it.
type CertificateAuthority struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	SHA256    string    `json:"sha256"`
	SHA1      string    `json:"sha1"`
	Active    bool      `json:"active"`
	// State is the rotation state of our intermediates and RAs: NEXT,
	// ACTIVE or RETIRED (docs/api.md, "Rotating the intermediate").
	State string `json:"state,omitempty"`
	// KeyOnline tells whether scepca holds the private key (false for a
	// root whose key was exported and removed).
	KeyOnline bool `json:"keyOnline"`
}

func caView(c *store.CA) (*CertificateAuthority, error) {
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, err
	}
	s256 := sha256.Sum256(c.CertDER)
	s1 := sha1.Sum(c.CertDER) //nolint:gosec // thumbprint, see import
	var state string
	if c.Role == store.RoleIntermediate || c.Role == store.RoleRA {
		state = c.Lifecycle()
	}
	return &CertificateAuthority{
		ID:        c.ID,
		State:     state,
		Role:      c.Role,
		Subject:   cert.Subject.String(),
		Issuer:    cert.Issuer.String(),
		Serial:    strings.ToUpper(cert.SerialNumber.Text(16)),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		SHA256:    strings.ToUpper(hex.EncodeToString(s256[:])),
		SHA1:      strings.ToUpper(hex.EncodeToString(s1[:])),
		Active:    c.Active,
		KeyOnline: len(c.KeyCiphertext) > 0,
	}, nil
}

func (a *API) listCAs(w http.ResponseWriter, r *http.Request) error {
	list, err := a.store.ListCAs(r.Context())
	if err != nil {
		return err
	}
	out := make([]*CertificateAuthority, 0, len(list))
	for _, c := range list {
		v, err := caView(c)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

// getCACert downloads a CA certificate as PEM (default) or DER
// (?format=der).
func (a *API) getCACert(w http.ResponseWriter, r *http.Request) error {
	c, err := a.store.GetCA(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no certificate authority %q", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="`+c.ID+`.pem"`)
		return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.CertDER})
	case "der":
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Content-Disposition", `attachment; filename="`+c.ID+`.cer"`)
		_, err := w.Write(c.CertDER) //nolint:gosec // G705 false positive: a CA certificate from the store, sent as application/pkix-cert, not request data
		return err
	default:
		return problemf(http.StatusBadRequest, "format must be pem or der, not %q", f)
	}
}
