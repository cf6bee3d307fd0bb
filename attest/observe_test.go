package attest_test

import (
	"slices"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
)

// TestVerifyObserve: Config.Observe is told each verification's reason.
func TestVerifyObserve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	var got []string
	v, err := attest.New(attest.Config{
		Nonces: f.nonces, Anchors: f.anchors, Certificates: f.db, CRLs: f.crls,
		Devices: f.db, Integrations: f.db, Hints: f.kek, Now: f.clock.Now,
		Observe: func(reason string) { got = append(got, reason) },
	})
	if err != nil {
		t.Fatal(err)
	}
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "alice managementAttestation DEV-OBS")
	req := f.desktopProof(t, key, cert, "DEV-OBS", attest.AlgRSAPKCS1SHA256)
	for range 2 { // the second presentation of the nonce is refused
		if _, err := v.Verify(t.Context(), decode(t, req)); err != nil {
			t.Fatalf("Verify() = %v", err)
		}
	}
	if want := []string{attest.ReasonManaged, attest.ReasonNonceUsed}; !slices.Equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}
