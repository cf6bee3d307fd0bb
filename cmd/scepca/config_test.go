package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConfigFile decodes the testdata config files strictly.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want string // error substring; empty for success
	}{
		{"valid.json", ""},
		{"unknown-key.json", `unknown key "listen-address"`},
		{"duplicate-key.json", `key "listen" appears twice`},
		{"nested.json", `unknown key "tls"`},
		{"bad-duration.json", `"cert-validity": invalid value "90d"`},
		{"not-object.json", "want a JSON object"},
		{"trailing.json", "data after the JSON object"},
		{"null.json", `key "public-url": want a string, number or boolean`},
		{"yaml.json", "not JSON"},
		{"missing.json", "no such file"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var o serveOptions
			fs := o.flags(&syncBuffer{})
			_, err := parseSources(fs, []string{"--config", filepath.Join("testdata", "config", tc.file)}, testEnv())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("parseSources(%s) = %v", tc.file, err)
				}
				if o.listen != "127.0.0.1:8443" || o.validity != 2160*time.Hour || o.jitter != 240*time.Hour || o.attest.maxUnused != 0 || o.org != "Example" {
					t.Errorf("parseSources(%s) gave %+v", tc.file, o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseSources(%s) = %v, want an error containing %q", tc.file, err, tc.want)
			}
		})
	}
}

// TestConfigPrecedence: flag > SCEPCA_* > config file > default, and
// SCEPCA_CONFIG names the file.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "scepca.json")
	if err := os.WriteFile(file, []byte(`{"listen": "127.0.0.1:1001", "log-level": "warn", "org": "FromFile", "cert-validity": "720h"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var o serveOptions
	fs := o.flags(&syncBuffer{})
	sources, err := parseSources(fs, []string{"--listen", "127.0.0.1:1002"},
		testEnv("SCEPCA_CONFIG", file, "SCEPCA_LISTEN", "127.0.0.1:1003", "SCEPCA_LOG_LEVEL", "error"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"listen": o.listen, "log-level": o.logLevel, "org": o.org, "cert-validity": o.validity.String(), "key-type": o.keyType}
	want := map[string]string{"listen": "127.0.0.1:1002", "log-level": "error", "org": "FromFile", "cert-validity": "720h0m0s", "key-type": "rsa"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	wantSrc := map[string]string{"listen": sourceFlag, "log-level": sourceEnv, "org": sourceFile, "cert-validity": sourceFile, "key-type": sourceDefault, "config": sourceEnv}
	for k, v := range wantSrc {
		if sources[k] != v {
			t.Errorf("source of %s = %q, want %q", k, sources[k], v)
		}
	}
}

// TestConfigCheck runs `scepca config check` on good and bad settings.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeServerCert(t, certFile, keyFile, "cert")
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(body string) string {
		f, err := os.CreateTemp(dir, "cfg-*.json")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(body); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return f.Name()
	}
	good := cfg(`{"listen": "0.0.0.0:8443", "tls-cert": "` + certFile + `", "tls-key": "` + keyFile + `", "kek-file": "` + kekFile + `", "public-url": "https://scepca.example.com"}`)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string // error substring; empty for success
	}{
		{"good file", []string{"--config", good}, nil, ""},
		{"good with KEK from env", []string{"--listen", "127.0.0.1:8080"}, []string{"SCEPCA_KEK", strings.Repeat("cd", 32)}, ""},
		{"dev needs no KEK", []string{"--dev"}, nil, ""},
		{"no KEK", nil, nil, "no key-encryption key"},
		{"bad KEK", nil, []string{"SCEPCA_KEK", "short"}, "SCEPCA_KEK"},
		{"KEK file missing", []string{"--kek-file", filepath.Join(dir, "nope")}, nil, "no such file"},
		{"listen without port", []string{"--dev", "--listen", "127.0.0.1"}, nil, `--listen "127.0.0.1"`},
		{"listen bad port", []string{"--dev", "--listen", "127.0.0.1:http-alt"}, nil, "not a number"},
		{"plain HTTP beyond loopback", []string{"--dev", "--listen", "0.0.0.0:8080"}, nil, "refusing plain HTTP"},
		{"insecure-http allows it", []string{"--dev", "--listen", "0.0.0.0:8080", "--insecure-http"}, nil, ""},
		{"TLS key unreadable", []string{"--dev", "--tls-cert", certFile, "--tls-key", filepath.Join(dir, "nope")}, nil, "--tls-key"},
		{"bad log level", []string{"--dev", "--log-level", "loud"}, nil, "--log-level"},
		{"jitter above half the validity", []string{"--dev", "--cert-validity", "240h", "--cert-jitter", "200h"}, nil, "jitter"},
		{"negative nonce TTL", []string{"--dev", "--attest-nonce-ttl", "-1s"}, nil, "--attest-nonce-ttl"},
		{"negative audit retention", []string{"--dev", "--audit-retention", "-1h"}, nil, "--audit-retention"},
		{"bad public URL", []string{"--dev", "--public-url", "ftp://x"}, nil, "public URL"},
		{"bad key type", []string{"--dev", "--key-type", "dsa"}, nil, "key type"},
		{"data is a file", []string{"--dev", "--data", notDir}, nil, "not a directory"},
		{"unknown key in file", []string{"--dev", "--config", cfg(`{"lissen": ":1"}`)}, nil, `unknown key "lissen"`},
		{"stray argument", []string{"--dev", "extra"}, nil, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut syncBuffer
			err := run(t.Context(), append([]string{"config", "check"}, tc.args...), testEnv(tc.env...), &out, &errOut)
			if tc.want == "" {
				if err != nil || !strings.HasPrefix(out.String(), "configuration OK\n") {
					t.Errorf("config check %v = %v\n%s", tc.args, err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("config check %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestConfigCheckSources: config check prints each setting with its source.
func TestConfigCheckSources(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "scepca.json")
	if err := os.WriteFile(file, []byte(`{"org": "FromFile", "dev": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	if err := run(t.Context(), []string{"config", "check", "--config", file, "--log-level", "debug"}, testEnv("SCEPCA_CERT_VALIDITY", "720h"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`org                  "FromFile"`, "(file)", `log-level            "debug"`, "(flag)", `cert-validity        "720h0m0s"`, "(env)", `listen               "127.0.0.1:8080"`, "(default)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config check output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestServeConfigFile: a setting from --config reaches the running server.
func TestServeConfigFile(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "scepca.json")
	if err := os.WriteFile(file, []byte(`{"metrics-listen": "`+metricsAddr+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	startServer(t, "--config", file)
	if v, ok := sample(scrape(t, "http://"+metricsAddr+"/metrics"), "scepca_build_info", nil); !ok || v != 1 {
		t.Errorf("scepca_build_info on the file's metrics-listen = %v, %v, want 1", v, ok)
	}
}
