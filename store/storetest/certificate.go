package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scepca/scepca/store"
)

func bySerial(a, b *store.Certificate) int { return strings.Compare(a.Serial, b.Serial) }

func testCertRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()

	issued := certificate("1A2B3C")
	issued.TransactionID = "7R0un8ahJvRTpI5KVL7+B9TzxvI=" // no such transaction: the certificate is still stored

	revoked := certificate("FF00000000000001")
	revoked.User = ""
	revoked.DeviceID = ""
	revoked.Status = store.CertRevoked
	revoked.RevokedAt = t0.Add(48 * time.Hour)
	revoked.RevocationReason = 1 // keyCompromise

	// Times in another zone keep their instant; Equal is the comparison.
	cet := time.FixedZone("CET", 3600)
	zoned := certificate("2")
	zoned.NotBefore = t0.In(cet)
	zoned.NotAfter = t0.Add(24 * time.Hour).In(cet)
	zoned.IssuedAt = t0.Add(time.Second).In(cet)

	for _, c := range []*store.Certificate{issued, revoked, zoned} {
		want := *c
		want.DER = slices.Clone(c.DER)
		must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))
		c.DER[0] ^= 0xff // the store must not alias the caller's bytes

		got, err := s.GetCertificate(ctx, c.Serial)
		must(t, call("GetCertificate", c.Serial), err)
		wantDiff(t, call("GetCertificate", c.Serial), &want, got)

		got.DER[0] ^= 0xff // nor hand out its own
		got.Status = "MUTATED"
		got, err = s.GetCertificate(ctx, c.Serial)
		must(t, call("GetCertificate", c.Serial), err)
		wantDiff(t, call("GetCertificate", c.Serial)+" after mutating an earlier result", &want, got)
	}
}

func testSerialUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := certificate("0ABC")
	must(t, call("PutCertificate", first.Serial), s.PutCertificate(ctx, first))

	second := certificate("0ABC")
	second.Subject = "CN=another device"
	second.IntegrationID = "int-2"
	second.DER = []byte("another certificate")
	wantErr(t, call("PutCertificate", second.Serial)+" again", s.PutCertificate(ctx, second), store.ErrExists)

	got, err := s.GetCertificate(ctx, first.Serial)
	must(t, call("GetCertificate", first.Serial), err)
	wantDiff(t, call("GetCertificate", first.Serial)+" after a refused duplicate", certificate("0ABC"), got)

	n, err := s.CountCertificates(ctx)
	must(t, call("CountCertificates"), err)
	if n != 1 {
		t.Errorf("CountCertificates() = %d, want 1 after a refused duplicate", n)
	}
	list, err := s.ListCertificates(ctx, store.CertFilter{})
	must(t, call("ListCertificates", store.CertFilter{}), err)
	wantDiff(t, call("ListCertificates", store.CertFilter{}), []*store.Certificate{certificate("0ABC")}, list)
}

// ignoreLease: a completed transaction may keep or drop its lease.
var ignoreLease = cmpopts.IgnoreFields(store.Transaction{}, "LeaseUntil")

func testPutCertificateCompletesTransaction(t *testing.T, s store.Store) {
	ctx := t.Context()
	tx := transaction("int-1", "tx-1")
	_, err := s.ClaimTransaction(ctx, tx, t0)
	must(t, call("ClaimTransaction", tx.TransactionID, t0), err)

	c := certificate("5E")
	c.IntegrationID, c.TransactionID = tx.IntegrationID, tx.TransactionID
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))

	want := transaction("int-1", "tx-1")
	want.State = store.TxSuccess
	want.Serial = "5E"
	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after PutCertificate", want, got, ignoreLease)

	if _, err := s.GetCertificate(ctx, "5E"); err != nil {
		t.Errorf("GetCertificate(%q) = %v, want nil", "5E", err)
	}
}

// A serial clash writes nothing: the transaction stays PENDING, so the
// caller can retry with a new serial.
func testPutCertificateSerialClashKeepsTransaction(t *testing.T, s store.Store) {
	ctx := t.Context()
	tx := transaction("int-1", "tx-1")
	_, err := s.ClaimTransaction(ctx, tx, t0)
	must(t, call("ClaimTransaction", tx.TransactionID, t0), err)
	must(t, call("PutCertificate", "77"), s.PutCertificate(ctx, certificate("77")))

	clash := certificate("77")
	clash.IntegrationID, clash.TransactionID = tx.IntegrationID, tx.TransactionID
	wantErr(t, call("PutCertificate", clash.Serial)+" with a transaction", s.PutCertificate(ctx, clash), store.ErrExists)

	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after a refused PutCertificate", transaction("int-1", "tx-1"), got)

	retry := certificate("78")
	retry.IntegrationID, retry.TransactionID = tx.IntegrationID, tx.TransactionID
	must(t, call("PutCertificate", retry.Serial), s.PutCertificate(ctx, retry))
	got, err = s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	if got.State != store.TxSuccess || got.Serial != "78" {
		t.Errorf("GetTransaction(%q, %q) = state %s serial %q, want %s %q", "int-1", "tx-1", got.State, got.Serial, store.TxSuccess, "78")
	}
}

// PutCertificate touches only the transaction of its own integration, and
// creates none.
func testPutCertificateOtherTransactions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tx := transaction("int-1", "tx-1")
	_, err := s.ClaimTransaction(ctx, tx, t0)
	must(t, call("ClaimTransaction", tx.TransactionID, t0), err)

	c := certificate("9")
	c.IntegrationID, c.TransactionID = "int-2", "tx-1"
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))

	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after another integration's PutCertificate", transaction("int-1", "tx-1"), got)
	_, err = s.GetTransaction(ctx, "int-2", "tx-1")
	wantErr(t, call("GetTransaction", "int-2", "tx-1")+" after PutCertificate without a claim", err, store.ErrNotFound)
}

func testListCertificates(t *testing.T, s store.Store) {
	ctx := t.Context()

	list, err := s.ListCertificates(ctx, store.CertFilter{})
	must(t, call("ListCertificates", store.CertFilter{}), err)
	if len(list) != 0 {
		t.Errorf("ListCertificates({}) = %d certificates, want 0 in an empty store", len(list))
	}

	fixtures := []struct{ serial, integration, ca, status string }{
		{"01", "int-a", "ca-1", store.CertIssued},
		{"02", "int-a", "ca-1", store.CertRevoked},
		{"03", "int-a", "ca-2", store.CertIssued},
		{"04", "int-b", "ca-1", store.CertIssued},
		{"05", "int-b", "ca-2", store.CertOnHold},
		{"06", "int-b", "ca-2", store.CertIssued},
	}
	stored := map[string]*store.Certificate{}
	for i, f := range fixtures {
		c := certificate(f.serial)
		c.IntegrationID, c.CAID, c.Status = f.integration, f.ca, f.status
		c.IssuedAt = t0.Add(time.Duration(i) * time.Minute)
		if f.status != store.CertIssued {
			c.RevokedAt, c.RevocationReason = t0.Add(time.Hour), 6
		}
		must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))
		stored[c.Serial] = c
	}

	tests := []struct {
		name    string
		filter  store.CertFilter
		match   []string // the certificates the filter selects
		wantLen int      // how many come back: len(match) unless Limit cuts
	}{
		{"all", store.CertFilter{}, []string{"01", "02", "03", "04", "05", "06"}, 6},
		{"integration", store.CertFilter{IntegrationID: "int-a"}, []string{"01", "02", "03"}, 3},
		{"ca", store.CertFilter{CAID: "ca-2"}, []string{"03", "05", "06"}, 3},
		{"status", store.CertFilter{Status: store.CertIssued}, []string{"01", "03", "04", "06"}, 4},
		{"combined", store.CertFilter{IntegrationID: "int-b", CAID: "ca-2", Status: store.CertIssued}, []string{"06"}, 1},
		{"no match", store.CertFilter{IntegrationID: "int-c"}, nil, 0},
		{"no match in status", store.CertFilter{IntegrationID: "int-a", Status: store.CertOnHold}, nil, 0},
		{"limit", store.CertFilter{Limit: 2}, []string{"01", "02", "03", "04", "05", "06"}, 2},
		{"limit one", store.CertFilter{Limit: 1}, []string{"01", "02", "03", "04", "05", "06"}, 1},
		{"limit with filter", store.CertFilter{Status: store.CertIssued, Limit: 3}, []string{"01", "03", "04", "06"}, 3},
		{"limit equal to matches", store.CertFilter{IntegrationID: "int-a", Limit: 3}, []string{"01", "02", "03"}, 3},
		{"limit above matches", store.CertFilter{CAID: "ca-1", Limit: 10}, []string{"01", "02", "04"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.ListCertificates(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("ListCertificates(%+v) = %v, want nil", tc.filter, err)
			}
			if len(got) != tc.wantLen {
				t.Errorf("ListCertificates(%+v) = %d certificates, want %d", tc.filter, len(got), tc.wantLen)
			}
			seen := map[string]bool{}
			for _, c := range got {
				if seen[c.Serial] {
					t.Errorf("ListCertificates(%+v) returned %q twice", tc.filter, c.Serial)
				}
				seen[c.Serial] = true
				if !slices.Contains(tc.match, c.Serial) {
					t.Errorf("ListCertificates(%+v) returned %q, want only %q", tc.filter, c.Serial, tc.match)
					continue
				}
				wantDiff(t, call("ListCertificates", tc.filter)+" record "+c.Serial, stored[c.Serial], c)
			}
		})
	}
}

func testUpdateCertificateStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, call("PutCertificate", "A1"), s.PutCertificate(ctx, certificate("A1")))
	must(t, call("PutCertificate", "A2"), s.PutCertificate(ctx, certificate("A2")))

	revokedAt := t0.Add(2 * time.Hour)
	must(t, call("UpdateCertificateStatus", "A1", store.CertRevoked, revokedAt, 1),
		s.UpdateCertificateStatus(ctx, "A1", store.CertRevoked, revokedAt, 1))
	want := certificate("A1")
	want.Status, want.RevokedAt, want.RevocationReason = store.CertRevoked, revokedAt, 1
	got, err := s.GetCertificate(ctx, "A1")
	must(t, call("GetCertificate", "A1"), err)
	wantDiff(t, call("GetCertificate", "A1")+" after revocation", want, got)

	// Revocation is final: a hold, a lifted hold or another revocation is
	// refused and changes nothing.
	for _, st := range []string{store.CertOnHold, store.CertIssued, store.CertRevoked} {
		wantErr(t, call("UpdateCertificateStatus", "A1", st, t0.Add(4*time.Hour), 6)+" on a revoked certificate",
			s.UpdateCertificateStatus(ctx, "A1", st, t0.Add(4*time.Hour), 6), store.ErrConflict)
	}
	got, err = s.GetCertificate(ctx, "A1")
	must(t, call("GetCertificate", "A1"), err)
	wantDiff(t, call("GetCertificate", "A1")+" after refused changes", want, got)

	// A hold is lifted back to ISSUED with a zero time and reason.
	heldAt := t0.Add(3 * time.Hour)
	must(t, call("UpdateCertificateStatus", "A2", store.CertOnHold, heldAt, 6),
		s.UpdateCertificateStatus(ctx, "A2", store.CertOnHold, heldAt, 6))
	got, err = s.GetCertificate(ctx, "A2")
	must(t, call("GetCertificate", "A2"), err)
	if got.Status != store.CertOnHold || !got.RevokedAt.Equal(heldAt) || got.RevocationReason != 6 {
		t.Errorf("GetCertificate(%q) = %s %v %d, want %s %v 6", "A2", got.Status, got.RevokedAt, got.RevocationReason, store.CertOnHold, heldAt)
	}
	must(t, call("UpdateCertificateStatus", "A2", store.CertIssued, time.Time{}, 0),
		s.UpdateCertificateStatus(ctx, "A2", store.CertIssued, time.Time{}, 0))
	got, err = s.GetCertificate(ctx, "A2")
	must(t, call("GetCertificate", "A2"), err)
	wantDiff(t, call("GetCertificate", "A2")+" after the hold is lifted", certificate("A2"), got)

	wantErr(t, call("UpdateCertificateStatus", "B0", store.CertRevoked, revokedAt, 1),
		s.UpdateCertificateStatus(ctx, "B0", store.CertRevoked, revokedAt, 1), store.ErrNotFound)
	_, err = s.GetCertificate(ctx, "B0")
	wantErr(t, call("GetCertificate", "B0")+" after a refused update", err, store.ErrNotFound)
}

func testCountCertificates(t *testing.T, s store.Store) {
	ctx := t.Context()
	count := func(want int) {
		t.Helper()
		n, err := s.CountCertificates(ctx)
		if err != nil || n != want {
			t.Errorf("CountCertificates() = %d, %v, want %d, nil", n, err, want)
		}
	}
	count(0)
	for _, serial := range []string{"1", "2", "3"} {
		must(t, call("PutCertificate", serial), s.PutCertificate(ctx, certificate(serial)))
	}
	count(3)
	wantErr(t, call("PutCertificate", "2")+" again", s.PutCertificate(ctx, certificate("2")), store.ErrExists)
	count(3)
	must(t, call("UpdateCertificateStatus", "1", store.CertRevoked, t0, 0), s.UpdateCertificateStatus(ctx, "1", store.CertRevoked, t0, 0))
	count(3)
}

// testRevocationRace races a revocation against holds and lifted holds of
// one certificate: whatever the order, the certificate ends REVOKED with
// the revocation's reason, and exactly one revocation among many wins.
func testRevocationRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, call("PutCertificate", "R1"), s.PutCertificate(ctx, certificate("R1")))
	const n = 20
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range n {
		wg.Go(func() {
			err := s.UpdateCertificateStatus(ctx, "R1", store.CertRevoked, t0.Add(time.Hour), 1+i%2)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("UpdateCertificateStatus(R1, REVOKED) = %v, want nil or ErrConflict", err)
			}
		})
		wg.Go(func() {
			st := store.CertOnHold
			if i%2 == 1 {
				st = store.CertIssued
			}
			if err := s.UpdateCertificateStatus(ctx, "R1", st, t0.Add(time.Hour), 6); err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("UpdateCertificateStatus(R1, %s) = %v, want nil or ErrConflict", st, err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("revocations that succeeded = %d, want exactly 1", won.Load())
	}
	got, err := s.GetCertificate(ctx, "R1")
	must(t, call("GetCertificate", "R1"), err)
	if got.Status != store.CertRevoked || (got.RevocationReason != 1 && got.RevocationReason != 2) {
		t.Errorf("after the race R1 = %s reason %d, want REVOKED with a revocation's reason", got.Status, got.RevocationReason)
	}
}
