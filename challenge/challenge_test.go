package challenge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		s, err := GenerateSecret(SecretLength)
		if err != nil {
			t.Fatalf("GenerateSecret() = %v", err)
		}
		v := s.Reveal()
		if len(v) != SecretLength {
			t.Fatalf("len(GenerateSecret()) = %d, want %d", len(v), SecretLength)
		}
		if !IsPrintableString(v) || strings.ContainsAny(v, "_@!#$%^&* ") {
			t.Fatalf("GenerateSecret() = %q, not PrintableString-safe", v)
		}
		if seen[v] {
			t.Fatalf("GenerateSecret() repeated %q", v)
		}
		seen[v] = true
	}
}

func TestIsPrintableString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"ABCdef012", true},
		{"a b'()+,-./:=?", true},
		{"under_score", false},
		{"at@", false},
		{"bang!", false},
		{"hash#", false},
		{"dollar$", false},
		{"é", false},
	} {
		if got := IsPrintableString(tc.in); got != tc.want {
			t.Errorf("IsPrintableString(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	secret, err := GenerateSecret(SecretLength)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hash, []byte(secret.Reveal())) {
		t.Fatal("HashSecret() contains the secret")
	}
	integ := &store.Integration{ID: "i1", SecretHash: hash}
	for _, tc := range []struct {
		name    string
		integ   *store.Integration
		pw      Secret
		wantErr error
	}{
		{"right", integ, secret, nil},
		{"wrong", integ, secret + "x", ErrInvalid},
		{"empty", integ, "", ErrInvalid},
		{"no secret configured", &store.Integration{ID: "i2"}, secret, ErrInvalid},
		{"corrupt hash", &store.Integration{ID: "i3", SecretHash: []byte{9, 9}}, secret, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Static{}.Validate(t.Context(), Request{Integration: tc.integ, Password: tc.pw})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Validate(%s) = %v, want %v", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	s := Secret("hunter2-SECRET")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "secret", s, "any", any(s))
	fmt.Fprintf(&buf, "%v %s %+v %#v", s, s, s, s)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("no REDACTED marker in %s", buf.String())
	}
}

// TestStaticOverlap: after a reset with an overlap window the replaced
// secret works until the window ends, then only the new one does.
func TestStaticOverlap(t *testing.T) {
	t.Parallel()
	old, oldHash := newHashedSecret(t)
	cur, curHash := newHashedSecret(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	integ := &store.Integration{ID: "i1", SecretHash: curHash, PreviousSecretHash: oldHash, PreviousSecretUntil: until}
	for _, tc := range []struct {
		name    string
		pw      Secret
		at      time.Time
		wantErr error
	}{
		{"new secret in the window", cur, now, nil},
		{"old secret in the window", old, now, nil},
		{"old secret at the window's end", old, until, ErrInvalid},
		{"old secret after the window", old, until.Add(time.Second), ErrInvalid},
		{"new secret after the window", cur, until.Add(time.Second), nil},
		{"another secret", "not-the-secret", now, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Static{Now: func() time.Time { return tc.at }}.Validate(t.Context(), Request{Integration: integ, Password: tc.pw})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Validate(%s) = %v, want %v", tc.name, err, tc.wantErr)
			}
		})
	}
}

func newHashedSecret(t *testing.T) (Secret, []byte) {
	t.Helper()
	s, err := GenerateSecret(SecretLength)
	if err != nil {
		t.Fatal(err)
	}
	h, err := HashSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}
