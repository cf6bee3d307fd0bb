package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scepca/scepca/store"
)

// Run runs the conformance suite against the backend newStore opens. Each
// subtest runs in parallel with its own store, which newStore must return
// empty and must close through t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"IntegrationCRUD", testIntegrationCRUD},
		{"CACRUD", testCACRUD},
		{"CertRoundTrip", testCertRoundTrip},
		{"SerialUnique", testSerialUnique},
		{"PutCertificateCompletesTransaction", testPutCertificateCompletesTransaction},
		{"PutCertificateSerialClashKeepsTransaction", testPutCertificateSerialClashKeepsTransaction},
		{"PutCertificateOtherTransactions", testPutCertificateOtherTransactions},
		{"ListCertificates", testListCertificates},
		{"UpdateCertificateStatus", testUpdateCertificateStatus},
		{"RevocationRace", testRevocationRace},
		{"CountCertificates", testCountCertificates},
		{"ClaimFirstWins", testClaimFirstWins},
		{"ClaimExpiredLease", testClaimExpiredLease},
		{"ClaimSuccessNeverTakenOver", testClaimSuccessNeverTakenOver},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ReleaseTransaction", testReleaseTransaction},
		{"ConfirmTransaction", testConfirmTransaction},
		{"IntegrationIntuneFields", testIntegrationIntuneFields},
		{"SweepTransactions", testSweepTransactions},
		{"PutOneTime", testPutOneTime},
		{"ConsumeOnce", testConsumeOnce},
		{"ConsumeExpired", testConsumeExpired},
		{"ConsumeOnceConcurrent", testConsumeOnceConcurrent},
		{"OneTimeKinds", testOneTimeKinds},
		{"CountOneTime", testCountOneTime},
		{"RedeemOneTime", testRedeemOneTime},
		{"SweepOneTime", testSweepOneTime},
		{"NonceConcurrent", testNonceConcurrent},
		{"RecordAttestation", testRecordAttestation},
		{"RecordAttestationOtherDevice", testRecordAttestationOtherDevice},
		{"RecordAttestationLifecycle", testRecordAttestationLifecycle},
		{"RecordAttestationConcurrent", testRecordAttestationConcurrent},
		{"RecordAttestationNonce", testRecordAttestationNonce},
		{"RecordAttestationTPMAK", testRecordAttestationTPMAK},
		{"DeviceNotFound", testDeviceNotFound},
		{"DeleteCA", testDeleteCA},
		{"IntegrationHintFields", testIntegrationHintFields},
		{"CertFilterFields", testCertFilterFields},
		{"Events", testEvents},
		{"Tokens", testTokens},
		{"NotFound", testNotFound},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is the suite's clock; every "now" is passed in explicitly. Times are
// UTC and whole seconds, and comparisons use time.Time.Equal (go-cmp calls
// Equal methods), so a backend is held to the instant, not to a location or
// a monotonic reading. t0 lies years ahead of the wall clock, so a backend
// that also hands expiry to a wall-clock mechanism (etcd leases as a garbage
// collector) keeps every record for the length of the suite.
var t0 = time.Date(2035, time.March, 1, 12, 0, 0, 0, time.UTC)

// cmpOpts treats nil and empty slices alike: encodings differ there (JSON
// turns an empty slice into "" and back) and no caller relies on it.
var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// call formats a method call for failure messages: Method("a", 2).
func call(method string, args ...any) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		switch a := a.(type) {
		case string:
			fmt.Fprintf(&b, "%q", a)
		case time.Time:
			b.WriteString(a.Format(time.RFC3339Nano))
		default:
			fmt.Fprintf(&b, "%v", a)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// must stops the test when a setup call fails.
func must(t *testing.T, desc string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want nil", desc, err)
	}
}

// wantErr reports err unless errors.Is(err, want); want nil means success.
func wantErr(t *testing.T, desc string, err, want error) bool {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", desc, err, want)
		return false
	}
	return true
}

// wantDiff reports a difference between want and got.
func wantDiff(t *testing.T, desc string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, append(opts, cmpOpts)...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", desc, d)
	}
}

// integration is a test builder: a complete record; callers override fields.
func integration(id string) *store.Integration {
	return &store.Integration{
		ID:            id,
		Name:          "Integration " + id,
		Platform:      store.PlatformDesktop,
		ChallengeType: store.ChallengeStatic,
		Enabled:       true,
		CreatedAt:     t0,
		UpdatedAt:     t0.Add(time.Minute),
		SecretHash:    []byte("salted-hash-of-" + id),
		CAChain:       store.CAChainIssuerAndChain,
		Renewal:       true,
		MinCipher:     "aes",
		ValidityDays:  365,
	}
}

func caRecord(id string) *store.CA {
	return &store.CA{
		ID:            id,
		Role:          store.RoleIntermediate,
		Subject:       "CN=scepca " + id,
		CertDER:       []byte("cert-der-" + id),
		KeyCiphertext: []byte("key-ciphertext-" + id),
		Active:        true,
		CreatedAt:     t0,
	}
}

func certificate(serial string) *store.Certificate {
	return &store.Certificate{
		Serial:        serial,
		CAID:          "ca-1",
		IntegrationID: "int-1",
		Subject:       "CN=device " + serial,
		User:          "user@example.com",
		DeviceID:      "device-" + serial,
		NotBefore:     t0.Add(-time.Hour),
		NotAfter:      t0.Add(365 * 24 * time.Hour),
		IssuedAt:      t0,
		PublicKeyHash: []byte("spki-hash-" + serial),
		DER:           []byte("der-" + serial),
		Status:        store.CertIssued,
	}
}

func transaction(integrationID, transactionID string) *store.Transaction {
	return &store.Transaction{
		IntegrationID: integrationID,
		TransactionID: transactionID,
		PublicKeyHash: []byte("csr-spki-hash"),
		ChallengeHash: []byte("challenge-hash"),
		State:         store.TxPending,
		CreatedAt:     t0,
		LeaseUntil:    t0.Add(time.Minute),
		ExpiresAt:     t0.Add(7 * 24 * time.Hour),
		Claim:         "claim-" + transactionID,
	}
}

func oneTime(key, owner string, expiresAt time.Time) *store.OneTime {
	return &store.OneTime{
		Key:       key,
		Owner:     owner,
		Data:      []byte("data-" + key),
		CreatedAt: t0,
		ExpiresAt: expiresAt,
	}
}
