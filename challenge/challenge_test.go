package challenge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

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
