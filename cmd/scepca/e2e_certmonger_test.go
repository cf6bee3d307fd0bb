package main

// End-to-end tests with certmonger (PROTOCOLS.md §1.13, §5 items 4 and 5):
// its scep-submit helper on its own, and the daemon on a private D-Bus
// session bus with every state directory under the test's temp dir.

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/cms"
)

// TestScepSubmit is PROTOCOLS.md §5 item 5: certmonger's helper reads
// GetCACaps and GetCACert (both with message=0) without the daemon.
func TestScepSubmit(t *testing.T) {
	t.Parallel()
	bin := scepSubmitPath(t)
	s := startServer(t)
	cas := listCAs(t, s)
	inter, root := cas["INTERMEDIATE"].Cert, cas["ROOT"].Cert
	chain := createIntegration(t, s, "chain", map[string]any{"caChain": "issuerAndChain"})

	t.Run("GetCACaps", func(t *testing.T) {
		t.Parallel()
		// The dev integration allows renewal, so Renewal is advertised.
		out, code := runClient(t, t.TempDir(), bin, "-u", s.SCEPURL, "-c")
		if code != 0 {
			t.Fatalf("scep-submit(-c) = exit %d, want 0\n%s", code, out)
		}
		got := strings.TrimRight(out, "\n") + "\n"
		golden := filepath.Join("testdata", "getcacaps.golden")
		if updateGolden() {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("scep-submit(-c) mismatch with %s (-want +got):\n%s", golden, diff)
		}
		// The helper prints the body as served.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.SCEPURL+"?operation=GetCACaps", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != string(want) || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("GetCACaps = %q (%s), want %q (text/plain)", body, resp.Header.Get("Content-Type"), want)
		}
	})

	for _, tc := range []struct {
		name string
		url  string
		want []*x509.Certificate
	}{
		{"GetCACert issuer", s.SCEPURL, []*x509.Certificate{inter}},
		{"GetCACert issuerAndChain", chain.SCEPURL, []*x509.Certificate{inter, root}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, code := runClient(t, t.TempDir(), bin, "-u", tc.url, "-C")
			if code != 0 {
				t.Fatalf("scep-submit(-C) = exit %d, want 0\n%s", code, out)
			}
			var got []*x509.Certificate
			rest := []byte(out)
			for {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				c, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					t.Fatalf("scep-submit(-C) printed a %s that does not parse: %v", blk.Type, err)
				}
				got = append(got, c)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("scep-submit(-C) = %d certificates, want %d\n%s", len(got), len(tc.want), out)
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || g.Equal(w)
				}
				if !found {
					t.Errorf("scep-submit(-C) lacks %v", w.Subject)
				}
			}
		})
	}
}

// certmongerDaemon is certmonger running on a private session bus inside
// dbus-run-session, with its state under dir.
type certmongerDaemon struct {
	dir     string
	getcert string
	bus     string // DBUS_SESSION_BUS_ADDRESS
	pid     int    // certmonger's
	log     string
}

// certmongerScript runs inside dbus-run-session with the state directory
// and certmonger's path: it publishes the private bus address and its PID,
// then becomes certmonger (no fork, debug 1).
const certmongerScript = `#!/bin/sh
set -e
printf '%s\n' "$$" > "$1/pid.tmp" && mv "$1/pid.tmp" "$1/pid"
printf '%s\n' "$DBUS_SESSION_BUS_ADDRESS" > "$1/bus.tmp" && mv "$1/bus.tmp" "$1/bus"
exec "$2" -s -n -d 1 >"$1/certmonger.log" 2>&1
`

// busConfig is a session bus configuration without service directories:
// Debian ships a session activation file for certmonger, and with the
// standard configuration the first getcert call would start a second
// daemon that races ours for the bus name and the state directories.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startCertmonger starts the daemon and waits until it answers on the bus.
// It is stopped (SIGTERM to its PID) at cleanup.
func startCertmonger(t *testing.T) *certmongerDaemon {
	t.Helper()
	certmonger := lookClient(t, "certmonger")
	getcert := lookClient(t, "getcert")
	drs := lookClient(t, "dbus-run-session")
	d := &certmongerDaemon{dir: t.TempDir(), getcert: getcert}
	d.log = filepath.Join(d.dir, "certmonger.log")
	env := clientEnv(d.dir)
	for _, v := range []struct{ env, sub string }{
		{"CERTMONGER_REQUESTS_DIR", "requests"},
		{"CERTMONGER_CAS_DIR", "cas"},
		{"CERTMONGER_LOCAL_CA_DIR", "local"},
		{"CERTMONGER_CONFIG_DIR", "config"},
		{"CERTMONGER_TMPDIR", "tmp"},
	} {
		p := filepath.Join(d.dir, v.sub)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, v.env+"="+p)
	}
	script := filepath.Join(d.dir, "run.sh")
	if err := os.WriteFile(script, []byte(certmongerScript), 0o700); err != nil {
		t.Fatal(err)
	}
	// The socket directory is short and plain: t.TempDir() names can hold
	// commas, which separate D-Bus address fields.
	sockDir, err := os.MkdirTemp("", "scepca-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) }) // runs after the daemon stopped
	conf := filepath.Join(d.dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, sockDir), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 3*clientTimeout)
	cmd := exec.CommandContext(ctx, drs, "--config-file="+conf, "--", "/bin/sh", script, d.dir, certmonger)
	cmd.Env = env
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a timeout ends dbus-daemon and certmonger too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // do not wait on output pipes a straggler holds
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		defer cancel()
		if d.pid > 0 {
			_ = syscall.Kill(d.pid, syscall.SIGTERM)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	// Wait for the script to publish the bus and PID, then for certmonger
	// to answer on the bus.
	deadline := time.Now().Add(20 * time.Second)
	for d.bus == "" || d.pid == 0 {
		bus, _ := os.ReadFile(filepath.Join(d.dir, "bus"))
		pid, _ := os.ReadFile(filepath.Join(d.dir, "pid"))
		d.bus = strings.TrimSpace(string(bus))
		d.pid, _ = strconv.Atoi(strings.TrimSpace(string(pid)))
		if d.bus != "" && d.pid > 0 {
			break
		}
		d.wait(t, done, deadline, &out)
	}
	for {
		if _, code := d.run(t, "list-cas", "-s"); code == 0 {
			return d
		}
		d.wait(t, done, deadline, &out)
	}
}

// wait pauses one poll interval, failing when the daemon exited or the
// deadline passed.
func (d *certmongerDaemon) wait(t *testing.T, done <-chan struct{}, deadline time.Time, out *syncBuffer) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("dbus-run-session exited early:\n%s\ncertmonger log:\n%s", out.String(), d.logTail())
	case <-time.After(25 * time.Millisecond):
	}
	if time.Now().After(deadline) {
		t.Fatalf("certmonger did not come up on its session bus:\n%s\ncertmonger log:\n%s", out.String(), d.logTail())
	}
}

// run runs getcert on the daemon's bus.
func (d *certmongerDaemon) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.getcert, args...)
	cmd.Dir = d.dir
	cmd.Env = clientEnv(d.dir, "DBUS_SESSION_BUS_ADDRESS="+d.bus)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("getcert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), 0
}

// logTail returns the end of certmonger's debug log.
func (d *certmongerDaemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// addSCEPCA adds the CA "SCEPCA" (extra: e.g. -N anchor.pem) and waits
// until the daemon has fetched its certificates; without them a request
// goes CA_UNCONFIGURED ("No RA certificate (-r) given").
func (d *certmongerDaemon) addSCEPCA(t *testing.T, scepURL string, extra ...string) {
	t.Helper()
	args := append([]string{"add-scep-ca", "-s", "-c", "SCEPCA", "-u", scepURL}, extra...)
	if out, code := d.run(t, args...); code != 0 {
		t.Fatalf("getcert(add-scep-ca) = exit %d, want 0\n%s", code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := d.run(t, "list-cas", "-s", "-c", "SCEPCA")
		if strings.Contains(out, "thumbprint") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("getcert(list-cas) shows no CA thumbprint after 30s:\n%s\ncertmonger log:\n%s", out, d.logTail())
		}
		time.Sleep(50 * time.Millisecond) // polling certmonger's state
	}
}

// request enrolls CN=dave... into dir/cert.pem with a key certmonger
// generates at dir/key.pem, waits (-w) and returns `getcert list`.
func (d *certmongerDaemon) request(t *testing.T, secret string) string {
	t.Helper()
	out, code := d.run(t, "request", "-s", "-c", "SCEPCA",
		"-k", filepath.Join(d.dir, "key.pem"), "-f", filepath.Join(d.dir, "cert.pem"),
		"-N", "CN=dave managementAttestation UDID9", "-L", secret, "-w", "-v")
	list, _ := d.run(t, "list", "-s")
	t.Logf("getcert(request) = exit %d\n%s", code, out)
	return list
}

// recordingProxy forwards every request to target and keeps each exchange,
// so a test can inspect what a real client sent and what it got.
type recordingProxy struct {
	URL    string
	target string
	mu     sync.Mutex
	log    []proxiedExchange
}

type proxiedExchange struct {
	Method, Path string
	Query        url.Values
	Request      []byte // POST body
	Response     []byte
	Status       int
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	p := &recordingProxy{target: target}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *recordingProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	u := p.target + r.URL.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.log = append(p.log, proxiedExchange{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Request: body, Response: respBody, Status: resp.StatusCode})
	p.mu.Unlock()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// exchanges returns the recorded exchanges for path and operation.
func (p *recordingProxy) exchanges(path, operation string) []proxiedExchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxiedExchange
	for _, e := range p.log {
		if e.Path == path && e.Query.Get("operation") == operation {
			out = append(out, e)
		}
	}
	return out
}

var (
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)

// TestCertmonger is PROTOCOLS.md §5 item 4 (and open point 10 of §6): the
// certmonger daemon enrolls to MONITORING with AES-256-CBC, SHA-256 and
// PKIOperation by GET, provided it can anchor our CertRep signature in a
// self-signed root: given with -N, or found in an issuerAndChain GetCACert.
// With only the intermediate (single-cert GetCACert, with or without -N
// intermediate) OpenSSL's PKCS7_verify cannot build a chain to a trust
// anchor and the request stays CA_UNREACHABLE.
func TestCertmonger(t *testing.T) {
	t.Parallel()
	lookClient(t, "certmonger")
	lookClient(t, "getcert")
	lookClient(t, "dbus-run-session")
	s := startServer(t, "--log-level", "info")
	cas := listCAs(t, s)
	inter, root := cas["INTERMEDIATE"].Cert, cas["ROOT"].Cert
	pems := t.TempDir()
	rootPEM, interPEM := filepath.Join(pems, "root.pem"), filepath.Join(pems, "intermediate.pem")
	writePEMFile(t, rootPEM, "CERTIFICATE", root.Raw)
	writePEMFile(t, interPEM, "CERTIFICATE", inter.Raw)
	proxy := newRecordingProxy(t, s.URL)
	chain := createIntegration(t, s, "chain", map[string]any{"caChain": "issuerAndChain"})
	issuerA := createIntegration(t, s, "issuer, -N intermediate", nil)
	issuerB := createIntegration(t, s, "issuer, no -N", nil)

	for _, tc := range []struct {
		name    string
		scepURL string
		secret  string
		addArgs []string
		success bool
	}{
		{"issuer, -N root", s.SCEPURL, s.Secret, []string{"-N", rootPEM}, true},
		{"issuerAndChain, no -N", chain.SCEPURL, chain.SecretKey, nil, true},
		{"issuer, -N intermediate", issuerA.SCEPURL, issuerA.SecretKey, []string{"-N", interPEM}, false},
		{"issuer, no -N", issuerB.SCEPURL, issuerB.SecretKey, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := strings.TrimPrefix(tc.scepURL, s.URL)
			d := startCertmonger(t)
			d.addSCEPCA(t, proxy.URL+path, tc.addArgs...)
			list := d.request(t, tc.secret)
			if !tc.success {
				const wantErr = "failed to verify signature on server response"
				if !strings.Contains(list, "status: CA_UNREACHABLE") || !strings.Contains(list, wantErr) {
					t.Errorf("certmonger(%s) list = %s, want CA_UNREACHABLE with %q", tc.name, list, wantErr)
				}
				return
			}
			if !strings.Contains(list, "status: MONITORING") {
				t.Fatalf("certmonger(%s) list = %s, want status: MONITORING\ncertmonger log:\n%s", tc.name, list, d.logTail())
			}
			cert := readCertFile(t, filepath.Join(d.dir, "cert.pem"))
			verifyIssued(t, cert, inter, root)
			if cert.Subject.CommonName != "dave managementAttestation UDID9" {
				t.Errorf("subject = %v, want CN=dave managementAttestation UDID9", cert.Subject)
			}
			if !samePublicKey(t, cert, filepath.Join(d.dir, "key.pem")) {
				t.Error("certificate public key differs from certmonger's key.pem")
			}
			checkCertmongerWire(t, s, tc.scepURL, proxy.exchanges(path, "PKIOperation"), filepath.Join(d.dir, "key.pem"), cert)
		})
	}
}

// checkCertmongerWire checks what certmonger sent and what we answered:
// GET with a percent-encoded message, SHA-256, AES-256-CBC with
// rsaEncryption, a decimal transactionID, and a CertRep that mirrors it.
func checkCertmongerWire(t *testing.T, s *testServer, scepURL string, exs []proxiedExchange, keyPath string, issued *x509.Certificate) {
	t.Helper()
	if len(exs) == 0 {
		t.Fatal("the proxy saw no PKIOperation")
	}
	key, ok := readPrivateKey(t, keyPath).(*rsa.PrivateKey)
	if !ok {
		t.Fatal("certmonger's key is not RSA")
	}
	for i, ex := range exs {
		if ex.Method != http.MethodGet || ex.Status != http.StatusOK {
			t.Errorf("PKIOperation %d: %s → %d, want GET → 200", i, ex.Method, ex.Status)
			continue
		}
		msg, err := base64.StdEncoding.DecodeString(ex.Query.Get("message"))
		if err != nil {
			t.Errorf("PKIOperation %d: message: %v", i, err)
			continue
		}
		req, err := pkcs7.Parse(msg)
		if err != nil {
			t.Fatalf("PKIOperation %d: parse request: %v", i, err)
		}
		if got := req.Signers[0].DigestAlgorithm.Algorithm; !got.Equal(oidSHA256) {
			t.Errorf("request digest = %v, want SHA-256", got)
		}
		if c, k, err := envelopeAlgorithms(req.Content); err != nil || !c.Equal(oidAES256CBC) || !k.Equal(oidRSAEncryption) {
			t.Errorf("request envelope = %v, %v, %v; want AES-256-CBC, rsaEncryption", c, k, err)
		}
		rep, err := pkcs7.Parse(ex.Response)
		if err != nil {
			t.Fatalf("PKIOperation %d: parse CertRep: %v", i, err)
		}
		if got := rep.Signers[0].DigestAlgorithm.Algorithm; !got.Equal(oidSHA256) {
			t.Errorf("CertRep digest = %v, want SHA-256 (mirrored)", got)
		}
		// The reply is encrypted to certmonger's signer certificate, which
		// certifies the enrolled key.
		plain, params, err := cms.Decrypt(rep.Content, req.GetOnlySigner(), key)
		if err != nil {
			t.Fatalf("decrypt CertRep %d: %v", i, err)
		}
		if want := (cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15}); params != want {
			t.Errorf("CertRep envelope = %v, want %v (mirrored)", params, want)
		}
		inner, err := pkcs7.Parse(plain)
		if err != nil || len(inner.Certificates) != 1 || !inner.Certificates[0].Equal(issued) {
			t.Errorf("CertRep %d does not carry the certificate certmonger saved (%v)", i, err)
		}
	}
	var found bool
	for _, ev := range requestLogs(s, scepURL, "PKIOperation") {
		cipher, _ := ev["cipher"].(string)
		tx, _ := ev["transaction_id"].(string)
		if ev["method"] == "GET" && strings.HasPrefix(cipher, "aes256-cbc") && ev["pki_status"] == "SUCCESS" && ev["message_type"] == "PKCSReq" {
			found = true
			if tx == "" || strings.Trim(tx, "0123456789") != "" {
				t.Errorf("certmonger transaction_id = %q, want a decimal string", tx)
			}
		}
	}
	if !found {
		t.Errorf("no GET PKIOperation with cipher aes256-cbc and SUCCESS in the server log:\n%s", s.Stderr.String())
	}
}
