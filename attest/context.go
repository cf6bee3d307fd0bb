package attest

import "time"

// DeviceContext is the verifier's answer (docs/attestation.md): managed or
// not, a stable reason, and the facts behind it. It never carries a secret.
type DeviceContext struct {
	Managed bool `json:"managed"`
	// Reason is ReasonManaged or one refusal of reasons.go.
	Reason string `json:"reason"`
	// Detail explains Reason in words, for people; integrators switch on
	// Reason.
	Detail        string `json:"detail,omitempty"`
	DeviceID      string `json:"deviceId"`
	Platform      string `json:"platform"`
	User          string `json:"user,omitempty"`
	IntegrationID string `json:"integrationId,omitempty"`
	// DeviceStatus is the device's lifecycle state when the device is
	// known: ACTIVE, SUSPENDED, DEACTIVATED.
	DeviceStatus string `json:"deviceStatus,omitempty"`
	// Certificate describes the certificate of a desktop proof.
	Certificate *CertificateInfo `json:"certificate,omitempty"`
	// HardwareBacked: the proof's certificate key is a TPM key, certified
	// by the device's pinned attestation key (docs/attestation.md, "TPM
	// key attestation"); HardwareBackedReason says why or why not.
	HardwareBacked       bool   `json:"hardwareBacked"`
	HardwareBackedReason string `json:"hardwareBackedReason"`
	// HardwareBackedDetail explains a false HardwareBacked in words.
	HardwareBackedDetail string `json:"hardwareBackedDetail,omitempty"`
	// TPMAKName is the TPM Name (uppercase hexadecimal) of the AK of
	// verified evidence.
	TPMAKName  string    `json:"tpmAkName,omitempty"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// CertificateInfo describes the certificate of a desktop proof.
type CertificateInfo struct {
	// Serial is uppercase hexadecimal without leading zeros.
	Serial  string `json:"serial"`
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// IssuerID is the store ID of the trusted issuer, when one is.
	IssuerID  string    `json:"issuerId,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// SHA256 is the uppercase hexadecimal SHA-256 of the certificate DER,
	// the key of its device binding.
	SHA256 string `json:"sha256"`
}

// NonceResponse is the answer of POST /api/v1/attestation/nonces.
type NonceResponse struct {
	Nonce     string    `json:"nonce"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Issuers are the trusted issuers: a device signs with a certificate
	// from one of them (the newest such certificate whose key can sign).
	Issuers []IssuerInfo `json:"issuers"`
}

// IssuerInfo describes a trusted issuer to devices.
type IssuerInfo struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	// SHA256 is the uppercase hexadecimal SHA-256 of the issuer's DER.
	SHA256 string `json:"sha256"`
}
