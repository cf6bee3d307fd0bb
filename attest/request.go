package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scepca/scepca/attest/tpm"
)

// Platforms a proof names. Desktop proofs are signed by a certificate's key;
// mobile proofs carry an HMAC keyed by the managementHint.
const (
	PlatformMacOS   = "MACOS"
	PlatformWindows = "WINDOWS"
	PlatformIOS     = "IOS"
	PlatformAndroid = "ANDROID"
)

// Signature algorithms of a desktop proof, all over SHA-256 (DESIGN.md §4).
const (
	AlgRSAPKCS1SHA256 = "RSA_PKCS1_SHA256"
	AlgRSAPSSSHA256   = "RSA_PSS_SHA256"
	AlgECDSASHA256    = "ECDSA_SHA256"
)

// Request limits. A body over MaxRequestBytes is refused before it is
// parsed; fields over their bounds are malformed.
const (
	MaxRequestBytes   = 64 << 10
	maxNonceLen       = 128
	maxDeviceIDLen    = 256
	maxIntegrationLen = 64
	maxCertBytes      = 16 << 10
	maxChainLen       = 4
	maxSignatureBytes = 1024
	maxTPMFieldBytes  = 2048
)

// VerifyRequest is the JSON body of POST /api/v1/attestation/verify, as
// integrators send it (docs/attestation.md). Binary fields are base64
// (standard or URL alphabet, padded or not; whitespace is ignored).
type VerifyRequest struct {
	Nonce    string `json:"nonce"`
	DeviceID string `json:"deviceId"`
	Platform string `json:"platform"`

	// Desktop (MACOS, WINDOWS).
	Certificate        string   `json:"certificate,omitempty"`
	Chain              []string `json:"chain,omitempty"`
	Signature          string   `json:"signature,omitempty"`
	SignatureAlgorithm string   `json:"signatureAlgorithm,omitempty"`
	// TPM is optional TPM key certification evidence for the
	// certificate's key (docs/attestation.md, "TPM key attestation").
	TPM *TPMEvidence `json:"tpm,omitempty"`

	// Mobile (IOS, ANDROID): exactly one of HMAC and ManagementHint.
	IntegrationID  string `json:"integrationId,omitempty"`
	HMAC           string `json:"hmac,omitempty"`
	ManagementHint string `json:"managementHint,omitempty"`
}

// TPMEvidence is tpm.Evidence in base64, as a VerifyRequest carries it.
type TPMEvidence struct {
	AKPublic    string `json:"akPublic"`
	CertifyInfo string `json:"certifyInfo"`
	Signature   string `json:"signature"`
	KeyPublic   string `json:"keyPublic"`
}

// EncodeTPMEvidence is the request form of ev.
func EncodeTPMEvidence(ev *tpm.Evidence) *TPMEvidence {
	enc := base64.StdEncoding.EncodeToString
	return &TPMEvidence{
		AKPublic: enc(ev.AKPublic), CertifyInfo: enc(ev.CertifyInfo),
		Signature: enc(ev.Signature), KeyPublic: enc(ev.KeyPublic),
	}
}

// Proof is a decoded, well-formed VerifyRequest: what Verifier.Verify
// checks.
type Proof struct {
	Nonce    string
	DeviceID string
	Platform string

	// Desktop.
	Certificate        *x509.Certificate
	CertSHA256         string // uppercase hexadecimal SHA-256 of Certificate.Raw
	Chain              []*x509.Certificate
	Signature          []byte
	SignatureAlgorithm string
	// TPM is the optional TPM evidence, decoded but not yet checked.
	TPM *tpm.Evidence

	// Mobile.
	IntegrationID  string
	HMAC           []byte
	ManagementHint Hint
}

// Desktop reports whether p is a desktop (certificate) proof.
func (p *Proof) Desktop() bool { return p.Platform == PlatformMacOS || p.Platform == PlatformWindows }

// RequestError is a malformed request. Detail names the problem in words
// safe to show the client: it never quotes secrets or internal errors.
type RequestError struct {
	Detail string
	// TooLarge: the body exceeded MaxRequestBytes.
	TooLarge bool
	err      error
}

func (e *RequestError) Error() string {
	if e.err != nil {
		return "attest: malformed request: " + e.Detail + ": " + e.err.Error()
	}
	return "attest: malformed request: " + e.Detail
}

func (e *RequestError) Unwrap() error { return e.err }

func malformed(format string, args ...any) error {
	return &RequestError{Detail: fmt.Sprintf(format, args...)}
}

// DecodeVerifyRequest reads a VerifyRequest strictly (unknown fields,
// duplicate bodies and trailing data are errors), checks it and returns the
// Proof. Every error is a *RequestError. It reads at most MaxRequestBytes+1
// bytes of r.
func DecodeVerifyRequest(r io.Reader) (*Proof, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		_, tooLarge := errors.AsType[*http.MaxBytesError](err)
		return nil, &RequestError{Detail: "reading the body failed", TooLarge: tooLarge, err: err}
	}
	if len(body) > MaxRequestBytes {
		return nil, &RequestError{Detail: fmt.Sprintf("body larger than %d bytes", MaxRequestBytes), TooLarge: true}
	}
	var req VerifyRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &RequestError{Detail: "invalid JSON body: " + jsonDetail(err), err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("invalid JSON body: trailing data")
	}
	return req.Proof()
}

func jsonDetail(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "empty or truncated"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "not a JSON object"
}

// Proof checks req and decodes its binary fields. Every error is a
// *RequestError.
func (req *VerifyRequest) Proof() (*Proof, error) {
	p := &Proof{Nonce: req.Nonce, DeviceID: req.DeviceID, Platform: req.Platform}
	switch {
	case req.Nonce == "":
		return nil, malformed("nonce is required")
	case len(req.Nonce) > maxNonceLen || !printableASCII(req.Nonce):
		return nil, malformed("nonce must be the string the nonce endpoint returned")
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return nil, err
	}
	switch req.Platform {
	case PlatformMacOS, PlatformWindows:
		return p, req.desktop(p)
	case PlatformIOS, PlatformAndroid:
		return p, req.mobile(p)
	case "":
		return nil, malformed("platform is required: MACOS, WINDOWS, IOS or ANDROID")
	default:
		return nil, malformed("platform must be MACOS, WINDOWS, IOS or ANDROID")
	}
}

func checkDeviceID(id string) error {
	switch {
	case id == "":
		return malformed("deviceId is required")
	case len(id) > maxDeviceIDLen:
		return malformed("deviceId must be at most %d bytes", maxDeviceIDLen)
	case !utf8.ValidString(id):
		return malformed("deviceId must be UTF-8")
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return malformed("deviceId must not contain control characters (the signed message is line-based)")
	case strings.TrimSpace(id) != id:
		return malformed("deviceId must not start or end with white space")
	}
	return nil
}

func (req *VerifyRequest) desktop(p *Proof) error {
	if req.IntegrationID != "" || req.HMAC != "" || req.ManagementHint != "" {
		return malformed("integrationId, hmac and managementHint apply to IOS and ANDROID proofs, not %s", req.Platform)
	}
	if req.Certificate == "" {
		return malformed("certificate is required for a %s proof", req.Platform)
	}
	der, err := decodeBase64(req.Certificate, maxCertBytes)
	if err != nil {
		return malformed("certificate must be base64 of a DER certificate (at most %d bytes)", maxCertBytes)
	}
	if p.Certificate, err = x509.ParseCertificate(der); err != nil {
		return &RequestError{Detail: "certificate is not a DER X.509 certificate", err: err}
	}
	sum := sha256.Sum256(der)
	p.CertSHA256 = strings.ToUpper(hex.EncodeToString(sum[:]))
	if len(req.Chain) > maxChainLen {
		return malformed("chain holds at most %d certificates", maxChainLen)
	}
	for i, s := range req.Chain {
		der, err := decodeBase64(s, maxCertBytes)
		if err != nil {
			return malformed("chain[%d] must be base64 of a DER certificate", i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return &RequestError{Detail: fmt.Sprintf("chain[%d] is not a DER X.509 certificate", i), err: err}
		}
		p.Chain = append(p.Chain, c)
	}
	switch req.SignatureAlgorithm {
	case AlgRSAPKCS1SHA256, AlgRSAPSSSHA256, AlgECDSASHA256:
		p.SignatureAlgorithm = req.SignatureAlgorithm
	case "":
		return malformed("signatureAlgorithm is required: RSA_PKCS1_SHA256, RSA_PSS_SHA256 or ECDSA_SHA256")
	default:
		return malformed("signatureAlgorithm must be RSA_PKCS1_SHA256, RSA_PSS_SHA256 or ECDSA_SHA256")
	}
	if req.Signature == "" {
		return malformed("signature is required for a %s proof", req.Platform)
	}
	if p.Signature, err = decodeBase64(req.Signature, maxSignatureBytes); err != nil || len(p.Signature) == 0 {
		return malformed("signature must be base64 (at most %d bytes)", maxSignatureBytes)
	}
	if req.TPM != nil {
		ev := &tpm.Evidence{}
		for _, f := range []struct {
			name string
			in   string
			out  *[]byte
		}{
			{"akPublic", req.TPM.AKPublic, &ev.AKPublic},
			{"certifyInfo", req.TPM.CertifyInfo, &ev.CertifyInfo},
			{"signature", req.TPM.Signature, &ev.Signature},
			{"keyPublic", req.TPM.KeyPublic, &ev.KeyPublic},
		} {
			if *f.out, err = decodeBase64(f.in, maxTPMFieldBytes); err != nil || len(*f.out) == 0 {
				return malformed("tpm.%s must be base64 of a TPM structure (at most %d bytes)", f.name, maxTPMFieldBytes)
			}
		}
		p.TPM = ev
	}
	return nil
}

func (req *VerifyRequest) mobile(p *Proof) error {
	if req.Certificate != "" || len(req.Chain) > 0 || req.Signature != "" || req.SignatureAlgorithm != "" || req.TPM != nil {
		return malformed("certificate, chain, signature, signatureAlgorithm and tpm apply to MACOS and WINDOWS proofs, not %s", req.Platform)
	}
	switch {
	case req.IntegrationID == "":
		return malformed("integrationId is required for a %s proof", req.Platform)
	case len(req.IntegrationID) > maxIntegrationLen || !printableASCII(req.IntegrationID):
		return malformed("integrationId must be an integration ID")
	}
	p.IntegrationID = req.IntegrationID
	switch {
	case req.HMAC != "" && req.ManagementHint != "":
		return malformed("give either hmac or managementHint, not both")
	case req.HMAC != "":
		mac, err := decodeBase64(req.HMAC, 64)
		if err != nil || len(mac) != sha256.Size {
			return malformed("hmac must be base64 of the %d-byte HMAC-SHA256", sha256.Size)
		}
		p.HMAC = mac
	case req.ManagementHint != "":
		if len(req.ManagementHint) > MaxHintLength {
			return malformed("managementHint must be at most %d characters", MaxHintLength)
		}
		p.ManagementHint = Hint(req.ManagementHint)
	default:
		return malformed("hmac is required for a %s proof", req.Platform)
	}
	return nil
}

// decodeBase64 decodes s in any of the four base64 forms, ignoring ASCII
// white space (openssl base64 wraps lines), refusing more than max bytes.
func decodeBase64(s string, limit int) ([]byte, error) {
	if base64.StdEncoding.EncodedLen(limit)+limit/32 < len(s) {
		return nil, errors.New("too long")
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errors.New("too long")
	}
	return b, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
