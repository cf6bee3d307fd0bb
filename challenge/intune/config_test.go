package intune

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeTenant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"contoso.onmicrosoft.com", "contoso.onmicrosoft.com", true},
		{" Contoso.OnMicrosoft.com ", "contoso.onmicrosoft.com", true},
		{"my-tenant01.onmicrosoft.com", "my-tenant01.onmicrosoft.com", true},
		{"0D9E8F7A-1111-4222-8333-444455556666", "0d9e8f7a-1111-4222-8333-444455556666", true},
		{"contoso.com", "", false},
		{"onmicrosoft.com", "", false},
		{"-x.onmicrosoft.com", "", false},
		{"a.b.onmicrosoft.com", "", false},
		{"contoso.onmicrosoft.com/../common", "", false},
		{"common", "", false},
		{"", "", false},
		{"0d9e8f7a111142228333444455556666", "", false},
	} {
		got, err := NormalizeTenant(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("NormalizeTenant(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNormalizeClientID(t *testing.T) {
	t.Parallel()
	if got, err := NormalizeClientID(" 6A1F1C3E-5B7D-4E2A-9C1B-2F3E4D5C6B7A"); err != nil || got != "6a1f1c3e-5b7d-4e2a-9c1b-2f3e4d5c6b7a" {
		t.Errorf("NormalizeClientID(GUID) = %q, %v", got, err)
	}
	for _, in := range []string{"", "scepca", "6a1f1c3e5b7d4e2a9c1b2f3e4d5c6b7a", "{6a1f1c3e-5b7d-4e2a-9c1b-2f3e4d5c6b7a}"} {
		if _, err := NormalizeClientID(in); err == nil {
			t.Errorf("NormalizeClientID(%q) = nil error, want one", in)
		}
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", DefaultGraphURL, true},
		{"https://graph.microsoft.us/", "https://graph.microsoft.us", true},
		{"https://login.chinacloudapi.cn", "https://login.chinacloudapi.cn", true},
		{"http://127.0.0.1:8081", "http://127.0.0.1:8081", true},
		{"http://[::1]:8081/", "http://[::1]:8081", true},
		{"http://localhost:1", "http://localhost:1", true},
		{"http://graph.example.com", "", false},
		{"http://10.0.0.1", "", false},
		{"ftp://graph.microsoft.com", "", false},
		{"https://user:pw@graph.microsoft.com", "", false},
		{"https://graph.microsoft.com?x=1", "", false},
		{"https://graph.microsoft.com#x", "", false},
		{"https://", "", false},
		{"graph.microsoft.com", "", false},
		{"::", "", false},
	} {
		got, err := NormalizeBaseURL(tc.in, DefaultGraphURL)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckClientSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in ClientSecret
		ok bool
	}{
		{"Abc8Q~x.y_z-0123456789abcdefghijklmnopq", true},
		{"", false},
		{"has space", false},
		{"tab\t", false},
		{"é", false},
		{ClientSecret(make([]byte, 1025)), false},
	} {
		err := CheckClientSecret(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("CheckClientSecret(%d chars) = %v, want ok %v", len(tc.in), err, tc.ok)
		}
		if err != nil && tc.in != "" && len(tc.in) < 100 && strings.Contains(err.Error(), string(tc.in)) {
			t.Errorf("CheckClientSecret error %q quotes the secret", err)
		}
	}
}

func TestNewRequiresOpener(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) = nil error, want Opener required")
	}
	if _, err := New(Config{Opener: testKEK(t), CallTimeout: -1}); err == nil {
		t.Error("New(negative timeout) = nil error")
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrToken, ErrForbidden, ErrServiceNotFound, ErrNotConfigured} {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("errors.Is(%v, ErrUnavailable) = false", err)
		}
	}
	e := &Error{Op: "token", Scope: GraphScope, Status: 401, Code: "invalid_client", AADSTS: "7000215", Description: "Invalid client secret provided.", RequestID: "r", kind: ErrToken}
	if want := "intune: token for https://graph.microsoft.com/.default: HTTP 401: invalid_client (AADSTS7000215): Invalid client secret provided. [client-request-id r]"; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}
