package intune

import (
	"sync"
	"testing"
	"time"
)

// TestObserve: every call to Intune's SCEP API is reported with its action
// and result (the metrics seam); CheckConfig loads without a call.
func TestObserve(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	f := newFixture(t, func(c *Config) {
		c.Observe = func(action, result string, _ time.Duration) {
			mu.Lock()
			got = append(got, action+"/"+result)
			mu.Unlock()
		}
	})
	if err := f.v.CheckConfig(f.integ); err != nil {
		t.Fatalf("CheckConfig() = %v, want nil", err)
	}
	if len(got) != 0 {
		t.Errorf("CheckConfig reported calls %v, want none", got)
	}
	f.fake.Accept("intune-challenge-1")
	if err := f.v.Validate(t.Context(), f.request(t, "7R0un8ahJvRTpI5KVL7+B9TzxvI=", "intune-challenge-1")); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	if err := f.v.Validate(t.Context(), f.request(t, "8R0un8ahJvRTpI5KVL7+B9TzxvI=", "unknown-challenge")); err == nil {
		t.Fatal("Validate(unknown challenge) = nil, want an error")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{ActionValidate + "/" + ResultSuccess, ActionValidate + "/" + ResultFailure}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("observed %v, want %v", got, want)
	}
	bad := *f.integ
	bad.IntuneSecretCiphertext = nil
	if err := f.v.CheckConfig(&bad); err == nil {
		t.Error("CheckConfig(no client secret) = nil, want an error")
	}
}
