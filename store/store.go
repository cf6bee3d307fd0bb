package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every backend returns (wrapped with context). Callers match
// them with errors.Is.
var (
	// ErrNotFound: the record does not exist (or a one-time value was never minted).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a put-if-absent found the key already present.
	ErrExists = errors.New("store: already exists")
	// ErrExpired: a one-time value exists but its expiry has passed.
	ErrExpired = errors.New("store: expired")
	// ErrUsed: a one-time value was already consumed.
	ErrUsed = errors.New("store: already used")
	// ErrConflict: a compare-and-swap lost against a concurrent writer.
	ErrConflict = errors.New("store: conflict")
)

// Platform of an integration.
const (
	PlatformDesktop = "DESKTOP"
	PlatformIOS     = "IOS"
	PlatformAndroid = "ANDROID"
)

// Challenge types of a desktop integration.
const (
	ChallengeStatic  = "STATIC"
	ChallengeDynamic = "DYNAMIC"
	ChallengeIntune  = "INTUNE"
)

// GetCACert answer forms (PROTOCOLS.md §1.3).
const (
	CAChainIssuer         = "issuer"
	CAChainIssuerAndChain = "issuerAndChain"
)

// Integration is one device integration: one SCEP endpoint with its challenge.
type Integration struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Platform      string    `json:"platform"`
	ChallengeType string    `json:"challengeType"`
	Enabled       bool      `json:"enabled"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`

	// SecretHash is the salted hash of the static challenge secret
	// (see challenge.HashSecret); the secret itself is never stored.
	SecretHash []byte `json:"secretHash,omitempty"`
	// PreviousSecretHash is the hash of the secret a reset replaced, still
	// accepted before PreviousSecretUntil (a reset with an overlap window,
	// so UEM profiles can be updated without failed enrollments).
	PreviousSecretHash  []byte    `json:"previousSecretHash,omitempty"`
	PreviousSecretUntil time.Time `json:"previousSecretUntil,omitzero"`

	// DeletedAt marks a deleted integration: a tombstone kept so that its
	// SCEP endpoint refuses enrollments with a signed FAILURE and its
	// certificates keep naming it. The admin API shows it no more.
	DeletedAt time.Time `json:"deletedAt,omitzero"`

	// CAChain selects the GetCACert answer: CAChainIssuer (default) or CAChainIssuerAndChain.
	CAChain string `json:"caChain,omitempty"`
	// Renewal allows RenewalReq signed by a certificate this integration issued.
	Renewal bool `json:"renewal,omitempty"`
	// RequireHardwareKey (DESKTOP): the attestation verifier refuses, with
	// KEY_NOT_HARDWARE_BACKED, a proof by one of this integration's
	// certificates without valid TPM key evidence from the device's pinned
	// AK (docs/attestation.md, "TPM key attestation").
	RequireHardwareKey bool `json:"requireHardwareKey,omitempty"`
	// MinCipher refuses weaker content encryption: "" or "des" (all), "3des", "aes".
	MinCipher string `json:"minCipher,omitempty"`
	// ValidityDays overrides the server's certificate validity when > 0.
	ValidityDays int `json:"validityDays,omitempty"`

	// Dynamic challenges (ChallengeDynamic). Username is the challenge
	// page's HTTP Basic user; the password's hash is SecretHash.
	Username string `json:"username,omitempty"`
	// ChallengeTTLMinutes is a challenge's lifetime; 0 means 60.
	ChallengeTTLMinutes int `json:"challengeTtlMinutes,omitempty"`
	// MaxOutstanding bounds unused, unexpired challenges; 0 means 1000.
	MaxOutstanding int `json:"maxOutstanding,omitempty"`
	// NDESEncoding serves the challenge page byte-compatible with NDES:
	// UTF-16LE without BOM and without a charset parameter.
	NDESEncoding bool `json:"ndesEncoding,omitempty"`

	// Intune delegation (ChallengeIntune; PROTOCOLS.md §3): the Entra ID
	// app registration that calls Intune's SCEP validation API.
	// IntuneTenant is "<name>.onmicrosoft.com" or the tenant GUID.
	IntuneTenant   string `json:"intuneTenant,omitempty"`
	IntuneClientID string `json:"intuneClientId,omitempty"`
	// IntuneSecretCiphertext is the app's client secret sealed under the
	// key-encryption key with the integration ID as additional data. The
	// API never returns it, sealed or not.
	IntuneSecretCiphertext []byte `json:"intuneSecretCiphertext,omitempty"`
	// IntuneAuthorityURL and IntuneGraphURL override the Entra ID and
	// Microsoft Graph base URLs (sovereign clouds, tests); empty means
	// https://login.microsoftonline.com and https://graph.microsoft.com.
	IntuneAuthorityURL string `json:"intuneAuthorityUrl,omitempty"`
	IntuneGraphURL     string `json:"intuneGraphUrl,omitempty"`

	// Mobile integrations (PlatformIOS, PlatformAndroid; PROTOCOLS.md
	// §4.2). HintCiphertext is the managementHint sealed under the
	// key-encryption key with the integration ID as additional data: the
	// verifier needs the hint itself to check HMAC proofs. AllowPlainHint
	// also accepts the hint presented in the clear.
	HintCiphertext []byte `json:"hintCiphertext,omitempty"`
	AllowPlainHint bool   `json:"allowPlainHint,omitempty"`
	// PreviousHintCiphertext is the hint a reset replaced, sealed the same
	// way, still accepted before PreviousHintUntil.
	PreviousHintCiphertext []byte    `json:"previousHintCiphertext,omitempty"`
	PreviousHintUntil      time.Time `json:"previousHintUntil,omitzero"`
}

// Deleted reports whether the integration is a tombstone (DeletedAt set).
func (in *Integration) Deleted() bool { return !in.DeletedAt.IsZero() }

// Certificate status values.
const (
	CertIssued  = "ISSUED"
	CertRevoked = "REVOKED"
	CertOnHold  = "ON_HOLD"
)

// Certificate is the record of one issued certificate. Serial is the
// canonical key: uppercase hexadecimal without leading zeros.
type Certificate struct {
	Serial        string    `json:"serial"`
	CAID          string    `json:"caId"`
	IntegrationID string    `json:"integrationId"`
	TransactionID string    `json:"transactionId,omitempty"`
	Subject       string    `json:"subject"`
	User          string    `json:"user,omitempty"`
	DeviceID      string    `json:"deviceId,omitempty"`
	NotBefore     time.Time `json:"notBefore"`
	NotAfter      time.Time `json:"notAfter"`
	IssuedAt      time.Time `json:"issuedAt"`
	// PublicKeyHash is SHA-256 of the certificate's SubjectPublicKeyInfo DER.
	PublicKeyHash []byte `json:"publicKeyHash"`
	DER           []byte `json:"der"`

	Status           string    `json:"status"`
	RevokedAt        time.Time `json:"revokedAt,omitzero"`
	RevocationReason int       `json:"revocationReason,omitempty"`
}

// CertFilter selects certificates in ListCertificates; zero fields match all.
type CertFilter struct {
	IntegrationID string
	CAID          string
	Status        string
	User          string
	DeviceID      string
	// ExpiringBefore, when set, matches certificates with NotAfter before it.
	ExpiringBefore time.Time
	// After continues a listing: only certificates that come after the
	// certificate with this serial in list order (newest IssuedAt first,
	// ties by serial descending). ErrNotFound if that serial is unknown.
	After string
	Limit int
}

// Matches reports whether c passes f's conditions (not After or Limit,
// which are positions in a listing).
func (f CertFilter) Matches(c *Certificate) bool {
	return (f.IntegrationID == "" || f.IntegrationID == c.IntegrationID) &&
		(f.CAID == "" || f.CAID == c.CAID) &&
		(f.Status == "" || f.Status == c.Status) &&
		(f.User == "" || f.User == c.User) &&
		(f.DeviceID == "" || f.DeviceID == c.DeviceID) &&
		(f.ExpiringBefore.IsZero() || c.NotAfter.Before(f.ExpiringBefore))
}

// Transaction states (RFC 8894 pkiStatus as seen by a retrying client).
const (
	TxPending = "PENDING"
	TxSuccess = "SUCCESS"
	// TxIssued: a certificate is signed and recorded but not yet delivered,
	// because the transaction was claimed with Confirm (Intune must
	// acknowledge it first); ConfirmTransaction makes it TxSuccess,
	// ReleaseTransaction drops it. A retry sees it as in flight.
	TxIssued = "ISSUED"
)

// Transaction records one SCEP transaction, keyed by (IntegrationID,
// TransactionID), so that a retry with the same key gets the same certificate
// (PROTOCOLS.md §1.7).
type Transaction struct {
	IntegrationID string `json:"integrationId"`
	TransactionID string `json:"transactionId"`
	// PublicKeyHash is SHA-256 of the CSR's SubjectPublicKeyInfo DER.
	PublicKeyHash []byte `json:"publicKeyHash"`
	// ChallengeHash is SHA-256 of the challenge password the request carried.
	ChallengeHash []byte    `json:"challengeHash,omitempty"`
	State         string    `json:"state"`
	Serial        string    `json:"serial,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	// LeaseUntil bounds a PENDING claim: after it a retry may take the
	// transaction over (the claimant crashed).
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// ExpiresAt is when the record may be swept.
	ExpiresAt time.Time `json:"expiresAt"`
	// Claim is a random token chosen by the claimant, so that a claimant
	// whose lease ran out cannot release the claim of the one that took the
	// transaction over.
	Claim string `json:"claim,omitempty"`
	// Confirm makes PutCertificate leave the transaction TxIssued instead
	// of TxSuccess: the certificate may be handed out only after
	// ConfirmTransaction (Intune's successNotification, PROTOCOLS.md §3.7).
	Confirm bool `json:"confirm,omitempty"`
}

// CA roles.
const (
	RoleRoot         = "ROOT"
	RoleIntermediate = "INTERMEDIATE"
	RoleRA           = "RA"
	// RoleUploaded is an intermediate an administrator uploaded (bring your
	// own CA): trusted by the attestation verifier only, never used to
	// issue, and stored without a key.
	RoleUploaded = "UPLOADED"
)

// Rotation states of our own intermediates and their RAs (CA.State; see
// docs/operations.md, "Rotating the intermediate").
const (
	// CAStateNext: a successor created by rotation, served by GetNextCACert;
	// it issues nothing and is not trusted yet.
	CAStateNext = "NEXT"
	// CAStateActive: the issuing CA (Active is true).
	CAStateActive = "ACTIVE"
	// CAStateRetired: replaced by its successor; issues nothing, but its
	// certificates stay trusted and it still signs their CRL and OCSP
	// answers until it expires or is deleted.
	CAStateRetired = "RETIRED"
)

// CA is a certificate authority (or RA) certificate with its private key
// encrypted under the key-encryption key. KeyCiphertext is empty when the
// key is kept offline (the root after export).
type CA struct {
	ID            string `json:"id"`
	Role          string `json:"role"`
	Subject       string `json:"subject"`
	CertDER       []byte `json:"certDer"`
	KeyCiphertext []byte `json:"keyCiphertext,omitempty"`
	// Active marks the issuing intermediate and its RA (and the root and
	// uploaded intermediates, which are always active).
	Active bool `json:"active"`
	// State is the rotation state of an INTERMEDIATE or RA record:
	// CAStateNext, CAStateActive or CAStateRetired. Records written before
	// rotation existed have none; read them with Lifecycle.
	State     string    `json:"state,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Lifecycle returns c's rotation state: State when set, else CAStateActive
// for an active record and CAStateRetired for an inactive one.
func (c *CA) Lifecycle() string {
	switch {
	case c.State != "":
		return c.State
	case c.Active:
		return CAStateActive
	}
	return CAStateRetired
}

// OneTime is a single-use value with an expiry: a dynamic challenge or an
// attestation nonce. Key is what the presenter proves knowledge of, usually
// a hash of the secret value.
type OneTime struct {
	Key       string    `json:"key"`
	Owner     string    `json:"owner,omitempty"`
	Data      []byte    `json:"data,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
	// Binding identifies who redeemed the value (RedeemOneTime), e.g. a
	// hash of the SCEP transaction that presented a challenge.
	Binding []byte `json:"binding,omitempty"`
}

// Kinds of one-time values; each is its own namespace.
const (
	KindChallenge = "challenge"
	KindNonce     = "nonce"
)

// IntegrationStore keeps device integrations.
type IntegrationStore interface {
	// CreateIntegration stores a new integration; ErrExists if the ID is taken.
	CreateIntegration(ctx context.Context, in *Integration) error
	// UpdateIntegration replaces an existing integration; ErrNotFound if absent.
	UpdateIntegration(ctx context.Context, in *Integration) error
	GetIntegration(ctx context.Context, id string) (*Integration, error)
	ListIntegrations(ctx context.Context) ([]*Integration, error)
	DeleteIntegration(ctx context.Context, id string) error
}

// CAStore keeps CA, intermediate and RA certificates with their encrypted keys.
type CAStore interface {
	// CreateCA stores a new CA record; ErrExists if the ID is taken.
	CreateCA(ctx context.Context, c *CA) error
	UpdateCA(ctx context.Context, c *CA) error
	GetCA(ctx context.Context, id string) (*CA, error)
	ListCAs(ctx context.Context) ([]*CA, error)
	// DeleteCA deletes the CA record id; ErrNotFound if absent.
	DeleteCA(ctx context.Context, id string) error
}

// CertStore keeps issued certificates.
type CertStore interface {
	// PutCertificate stores a newly issued certificate durably. The serial is
	// put-if-absent: ErrExists if any certificate already has it (the caller
	// picks a new serial). When c.TransactionID is set and the transaction
	// (c.IntegrationID, c.TransactionID) exists and is TxPending, it is
	// marked TxSuccess (TxIssued when claimed with Confirm) with this
	// serial in the same atomic write.
	PutCertificate(ctx context.Context, c *Certificate) error
	GetCertificate(ctx context.Context, serial string) (*Certificate, error)
	ListCertificates(ctx context.Context, f CertFilter) ([]*Certificate, error)
	// UpdateCertificateStatus sets status, revokedAt and reason; ErrNotFound
	// if absent. Revocation is final: on a certificate stored REVOKED it
	// writes nothing and returns ErrConflict, in the same atomic step as
	// the write, so a hold or a lifted hold that races a revocation cannot
	// undo it.
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
	// CountCertificates returns how many certificates are stored.
	CountCertificates(ctx context.Context) (int, error)
}

// TransactionStore keeps SCEP transactions for idempotent retries.
//
// A transaction past TxPending (TxIssued, TxSuccess) is durable: it is
// written with its certificate (PutCertificate). A TxPending claim needs
// to exclude concurrent claimants only while its claimant lives, so a
// backend that a single process owns (store/bolt: bbolt's file lock) may
// keep claims in that process's memory and save a durable write per
// enrollment. Such a backend loses its claims in a crash, so an interrupted
// transaction is simply claimed again by its retry instead of answering
// PENDING until the dead claim's lease runs out; nothing was issued for it,
// or the certificate would have been committed with the record. A backend
// that several processes share (etcd, issue 9) must keep claims durable:
// a claim in one replica's memory excludes no other replica.
type TransactionStore interface {
	// ClaimTransaction claims tx (State TxPending, LeaseUntil set) if no
	// record for its key exists, or if the existing one is TxPending with
	// LeaseUntil <= now. It returns (nil, nil) when the caller now owns the
	// transaction, else the existing record and ErrExists. Among concurrent
	// claimants exactly one wins. The claim is stored durably unless the
	// backend keeps claims in memory (see TransactionStore); either way
	// GetTransaction, ReleaseTransaction and SweepTransactions see it.
	ClaimTransaction(ctx context.Context, tx *Transaction, now time.Time) (*Transaction, error)
	GetTransaction(ctx context.Context, integrationID, transactionID string) (*Transaction, error)
	// ReleaseTransaction deletes a TxPending or TxIssued record whose Claim
	// equals claim (the attempt failed, so a retry starts afresh); records
	// in other states or held by another claim are kept.
	ReleaseTransaction(ctx context.Context, integrationID, transactionID, claim string) error
	// ConfirmTransaction turns a TxIssued record held by claim into
	// TxSuccess: its certificate was acknowledged and may be handed out.
	// ErrNotFound if absent; ErrConflict if the record is in another state
	// or held by another claim.
	ConfirmTransaction(ctx context.Context, integrationID, transactionID, claim string) error
	// SweepTransactions deletes records with ExpiresAt <= now and returns how many.
	SweepTransactions(ctx context.Context, now time.Time) (int, error)
}

// OneTimeStore keeps single-use values (dynamic challenges, nonces).
type OneTimeStore interface {
	// PutOneTime stores v under (kind, v.Key); ErrExists if present.
	PutOneTime(ctx context.Context, kind string, v *OneTime) error
	// ConsumeOneTime marks (kind, key) used at now and returns it. Exactly
	// one of many concurrent callers succeeds; the others get ErrUsed.
	// ErrNotFound if never stored (or swept); ErrExpired if ExpiresAt <= now.
	ConsumeOneTime(ctx context.Context, kind, key string, now time.Time) (*OneTime, error)
	// RedeemOneTime is ConsumeOneTime for a value bound to its redeemer: the
	// first caller marks it used with binding; a later call with the same
	// non-empty binding succeeds again (a retry of the same transaction),
	// any other gets ErrUsed. Exactly one binding ever wins.
	RedeemOneTime(ctx context.Context, kind, key string, binding []byte, now time.Time) (*OneTime, error)
	GetOneTime(ctx context.Context, kind, key string) (*OneTime, error)
	// CountOneTime counts unused, unexpired values of kind owned by owner.
	CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error)
	// SweepOneTime deletes values of kind with ExpiresAt <= now, and returns how many.
	SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error)
}

// Store is the whole storage contract; each backend implements it and runs
// store/storetest. Consumers accept only the roles they use.
type Store interface {
	IntegrationStore
	CAStore
	CertStore
	TransactionStore
	OneTimeStore
	DeviceStore
	AuditStore
	TokenStore
	Close() error
}
