package scep_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
)

var update = flag.Bool("update", false, "update golden files")

func TestGetCACapsGolden(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	resp, body := e.httpGet(t, "", "operation=GetCACaps")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GetCACaps status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("GetCACaps Content-Type = %q, want %q", ct, "text/plain")
	}
	golden := filepath.Join("testdata", "getcacaps.golden")
	if *update {
		if err := os.WriteFile(golden, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(body)); diff != "" {
		t.Errorf("GetCACaps body mismatch (-golden +got):\n%s", diff)
	}
}

func TestGetCACaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name        string
		edit        func(*store.Integration)
		wantPresent []string
		wantAbsent  []string
	}{
		{
			name:        "default",
			edit:        func(*store.Integration) {},
			wantPresent: []string{"POSTPKIOperation", "SHA-1", "SHA-256", "SHA-512", "AES", "DES3", "SCEPStandard"},
			wantAbsent:  []string{"Renewal", "GetNextCACert"},
		},
		{
			name:        "renewal",
			edit:        func(in *store.Integration) { in.Renewal = true },
			wantPresent: []string{"Renewal", "DES3"},
		},
		{
			name:        "min cipher aes",
			edit:        func(in *store.Integration) { in.MinCipher = "aes" },
			wantPresent: []string{"AES"},
			wantAbsent:  []string{"DES3", "Renewal"},
		},
		{
			name:        "min cipher 3des",
			edit:        func(in *store.Integration) { in.MinCipher = "3des" },
			wantPresent: []string{"AES", "DES3"},
		},
		{
			name:        "min cipher des",
			edit:        func(in *store.Integration) { in.MinCipher = "des" },
			wantPresent: []string{"AES", "DES3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := f.addEndpoint(t, tc.edit)
			caps, err := e.client("").GetCACaps(t.Context())
			if err != nil {
				t.Fatalf("GetCACaps(%s) = %v", tc.name, err)
			}
			for _, c := range tc.wantPresent {
				if !slices.Contains(caps, c) {
					t.Errorf("GetCACaps(%s) = %q, want %q present", tc.name, caps, c)
				}
			}
			for _, c := range tc.wantAbsent {
				if slices.Contains(caps, c) {
					t.Errorf("GetCACaps(%s) = %q, want %q absent", tc.name, caps, c)
				}
			}
			if got := scep.Capabilities(e.integ, false); strings.Join(caps, "\n")+"\n" != got {
				t.Errorf("GetCACaps(%s) body differs from Capabilities() = %q", tc.name, got)
			}
		})
	}
}

// certsOnly parses a degenerate certs-only SignedData.
func certsOnly(t *testing.T, body []byte) []*x509.Certificate {
	t.Helper()
	p7, err := pkcs7.Parse(body)
	if err != nil {
		t.Fatalf("pkcs7.Parse(GetCACert) = %v", err)
	}
	if len(p7.Signers) != 0 {
		t.Errorf("GetCACert SignedData has %d signers, want 0 (degenerate)", len(p7.Signers))
	}
	return p7.Certificates
}

func rawCerts(certs []*x509.Certificate) [][]byte {
	var out [][]byte
	for _, c := range certs {
		out = append(out, c.Raw)
	}
	return out
}

func TestGetCACert(t *testing.T) {
	t.Parallel()
	rsaFix := newFixture(t)
	ecFix := newFixture(t, withECDSA())
	chain := func(in *store.Integration) { in.CAChain = store.CAChainIssuerAndChain }
	tests := []struct {
		name     string
		f        *fixture
		edit     func(*store.Integration)
		query    string
		wantType string
		want     func(f *fixture) []*x509.Certificate
	}{
		{
			name:     "rsa default",
			f:        rsaFix,
			edit:     func(*store.Integration) {},
			query:    "operation=GetCACert",
			wantType: "application/x-x509-ca-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.Intermediate()} },
		},
		{
			name:     "rsa apple message",
			f:        rsaFix,
			edit:     func(*store.Integration) {},
			query:    "operation=GetCACert&message=Device%20Management%20Identity%20Certificate",
			wantType: "application/x-x509-ca-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.Intermediate()} },
		},
		{
			name:     "rsa certmonger message",
			f:        rsaFix,
			edit:     func(*store.Integration) {},
			query:    "operation=GetCACert&message=0",
			wantType: "application/x-x509-ca-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.Intermediate()} },
		},
		{
			name:     "rsa explicit issuer",
			f:        rsaFix,
			edit:     func(in *store.Integration) { in.CAChain = store.CAChainIssuer },
			query:    "operation=GetCACert",
			wantType: "application/x-x509-ca-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.Intermediate()} },
		},
		{
			name:     "rsa issuerAndChain",
			f:        rsaFix,
			edit:     chain,
			query:    "operation=GetCACert",
			wantType: "application/x-x509-ca-ra-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.Intermediate(), f.ca.Root()} },
		},
		{
			name:     "ecdsa default",
			f:        ecFix,
			edit:     func(*store.Integration) {},
			query:    "operation=GetCACert",
			wantType: "application/x-x509-ca-ra-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.RA(), f.ca.Intermediate()} },
		},
		{
			name:     "ecdsa apple message",
			f:        ecFix,
			edit:     func(*store.Integration) {},
			query:    "operation=GetCACert&message=Device%20Management%20Identity%20Certificate",
			wantType: "application/x-x509-ca-ra-cert",
			want:     func(f *fixture) []*x509.Certificate { return []*x509.Certificate{f.ca.RA(), f.ca.Intermediate()} },
		},
		{
			name:     "ecdsa issuerAndChain",
			f:        ecFix,
			edit:     chain,
			query:    "operation=GetCACert",
			wantType: "application/x-x509-ca-ra-cert",
			want: func(f *fixture) []*x509.Certificate {
				return []*x509.Certificate{f.ca.RA(), f.ca.Intermediate(), f.ca.Root()}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := tc.f.addEndpoint(t, tc.edit)
			resp, body := e.httpGet(t, "", tc.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GetCACert(%s) status = %d, want 200", tc.name, resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("GetCACert(%s) Content-Type = %q, want %q", tc.name, ct, tc.wantType)
			}
			want := tc.want(tc.f)
			var got []*x509.Certificate
			if tc.wantType == "application/x-x509-ca-cert" {
				if !bytes.Equal(body, want[0].Raw) {
					t.Fatalf("GetCACert(%s) body is not the intermediate's DER", tc.name)
				}
				got = want
			} else {
				got = certsOnly(t, body)
			}
			if diff := cmp.Diff(rawCerts(want), rawCerts(got)); diff != "" {
				t.Errorf("GetCACert(%s) certificates mismatch (-want +got):\n%s", tc.name, diff)
			}
			// Whatever the form, the client finds an RSA recipient that can
			// decrypt and sign (PROTOCOLS.md §1.3).
			rcpt := scepclient.Recipient(got)
			const ku = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
			if rcpt == nil || rcpt.KeyUsage&ku != ku {
				t.Errorf("GetCACert(%s) recipient key usage lacks digitalSignature|keyEncipherment", tc.name)
			}
			if wantRcpt, _ := tc.f.ca.Recipient(); rcpt == nil || !bytes.Equal(rcpt.Raw, wantRcpt.Raw) {
				t.Errorf("GetCACert(%s) recipient is not the CA's recipient certificate", tc.name)
			}
		})
	}
}

func TestGetCACertMessageIgnored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []fixtureOption
	}{
		{"rsa", nil},
		{"ecdsa", []fixtureOption{withECDSA()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, tc.opts...)
			_, plain := e.httpGet(t, "", "operation=GetCACert")
			_, apple := e.httpGet(t, "", "operation=GetCACert&message=Device%20Management%20Identity%20Certificate")
			if !bytes.Equal(plain, apple) {
				t.Errorf("GetCACert(message=Device Management Identity Certificate) differs from GetCACert()")
			}
		})
	}
}

func TestECDSARecipientIsRA(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, withECDSA())
	certs, ct, err := e.client("").GetCACert(t.Context())
	if err != nil {
		t.Fatalf("GetCACert() = %v", err)
	}
	if ct != "application/x-x509-ca-ra-cert" {
		t.Errorf("GetCACert() Content-Type = %q, want application/x-x509-ca-ra-cert", ct)
	}
	ra := scepclient.Recipient(certs)
	if ra == nil || ra.IsCA {
		t.Fatalf("GetCACert() offers no end-entity RA: %v", ra)
	}
	const ku = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if ra.KeyUsage&ku != ku {
		t.Errorf("RA key usage = %#x, want digitalSignature|keyEncipherment", ra.KeyUsage)
	}
	if ra.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("RA key = %v, want RSA", ra.PublicKeyAlgorithm)
	}
	if err := ra.CheckSignatureFrom(e.f.ca.Intermediate()); err != nil {
		t.Errorf("RA not issued by the intermediate: %v", err)
	}
	if e.f.ca.Intermediate().PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("intermediate key = %v, want ECDSA", e.f.ca.Intermediate().PublicKeyAlgorithm)
	}
	// The RA receives the envelope and signs the CertRep; the certificate
	// comes from the ECDSA intermediate.
	m, cert := e.enroll(t, withRecipient(ra))
	if err := cert.CheckSignatureFrom(e.f.ca.Intermediate()); err != nil {
		t.Errorf("PKIOperation(%s) certificate not signed by the ECDSA intermediate: %v", describe(m), err)
	}
}

func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.addEndpoint(t)
	ios := f.addEndpoint(t, func(in *store.Integration) { in.Platform = store.PlatformIOS })
	deleted := f.addEndpoint(t, func(in *store.Integration) { in.DeletedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })
	tests := []struct {
		name       string
		url        string
		query      string
		wantStatus int
		wantType   string
		wantBody   string // substring
	}{
		{"bare GET", e.url, "", http.StatusOK, "text/plain; charset=utf-8", e.integ.ID},
		{"bare GET slash", e.url + "/", "", http.StatusOK, "text/plain; charset=utf-8", e.integ.ID},
		{"bare GET pkiclient.exe", e.url + "/pkiclient.exe", "", http.StatusOK, "text/plain; charset=utf-8", e.integ.ID},
		{"GetCACaps slash", e.url + "/", "operation=GetCACaps", http.StatusOK, "text/plain", "SCEPStandard"},
		{"GetCACaps pkiclient.exe", e.url + "/pkiclient.exe", "operation=GetCACaps&message=0", http.StatusOK, "text/plain", "SCEPStandard"},
		{"GetCACert slash", e.url + "/", "operation=GetCACert", http.StatusOK, "application/x-x509-ca-cert", ""},
		{"GetCACert pkiclient.exe", e.url + "/pkiclient.exe", "operation=GetCACert&message=1", http.StatusOK, "application/x-x509-ca-cert", ""},
		{"unknown operation", e.url, "operation=GetSomething", http.StatusBadRequest, "text/plain; charset=utf-8", "unknown operation"},
		{"GetNextCACert without successor", e.url, "operation=GetNextCACert", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"unknown integration", f.srv.URL + "/scep/nope", "operation=GetCACaps", http.StatusNotFound, "text/plain; charset=utf-8", "unknown SCEP endpoint"},
		{"unknown integration bare", f.srv.URL + "/scep/nope/pkiclient.exe", "", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"non-desktop integration", ios.url, "operation=GetCACaps", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"deleted integration GetCACaps", deleted.url, "operation=GetCACaps", http.StatusNotFound, "text/plain; charset=utf-8", "unknown SCEP endpoint"},
		{"deleted integration GetCACert", deleted.url, "operation=GetCACert", http.StatusNotFound, "text/plain; charset=utf-8", "unknown SCEP endpoint"},
		{"deleted integration bare", deleted.url, "", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"PKIOperation without message", e.url, "operation=PKIOperation", http.StatusBadRequest, "text/plain; charset=utf-8", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.url
			if tc.query != "" {
				u += "?" + tc.query
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := e.roundTrip(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("GET %s = %d, want %d (%q)", tc.name, resp.StatusCode, tc.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("GET %s Content-Type = %q, want %q", tc.name, ct, tc.wantType)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET %s body = %q, want it to contain %q", tc.name, body, tc.wantBody)
			}
		})
	}
}

// TestPKIOperationPaths enrolls through each of the three routes, by GET
// and POST.
func TestPKIOperationPaths(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	for _, path := range []string{"", "/", "/pkiclient.exe"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method+" "+path, func(t *testing.T) {
				t.Parallel()
				m := e.message(t)
				c := &scepclient.Client{URL: e.url + path, HTTP: e.f.srv.Client(), Method: method}
				out, err := c.PKIOperation(t.Context(), marshal(t, m))
				if err != nil {
					t.Fatalf("PKIOperation(%s %s) = %v", method, path, err)
				}
				wantSuccess(t, m, checkReply(t, m, out))
			})
		}
	}
}

// macOSQuery encodes msg the way macOS does: std base64 with only '='
// percent-encoded; '+' and '/' stay raw.
func macOSQuery(msg []byte) string {
	return "operation=PKIOperation&message=" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(msg), "=", "%3D")
}

// quirkMessage returns a request whose base64 holds '+' and ends in '='
// padding, so the macOS encoding matters.
func quirkMessage(t *testing.T, e *endpoint) (*scepclient.Message, []byte) {
	t.Helper()
	txID := newTransactionID(t)
	for range 16 {
		m := e.message(t, withTxID(txID))
		der := marshal(t, m)
		b64 := base64.StdEncoding.EncodeToString(der)
		if strings.Contains(b64, "+") && strings.HasSuffix(b64, "=") {
			return m, der
		}
		txID += "x" // one more byte shifts the padding
	}
	t.Fatal("could not build a message whose base64 has '+' and '=' padding")
	return nil, nil
}

func TestMacOSGETQuirk(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	m, der := quirkMessage(t, e)
	resp, body := e.httpGet(t, "", macOSQuery(der))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PKIOperation(macOS GET) status = %d, want 200 (%q)", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-pki-message" {
		t.Errorf("PKIOperation(macOS GET) Content-Type = %q, want application/x-pki-message", ct)
	}
	wantSuccess(t, m, checkReply(t, m, body))
}

func TestDecodeGETMessage(t *testing.T) {
	t.Parallel()
	msg := []byte{0x30, 0x82, 0xfb, 0xef, 0xff, 0x3e, 0x01} // base64 "MIL77/8+AQ==": '+', '/' and padding
	b64 := base64.StdEncoding.EncodeToString(msg)
	if !strings.ContainsAny(b64, "+") || !strings.HasSuffix(b64, "=") {
		t.Fatalf("test vector %q lacks '+' or padding", b64)
	}
	tests := []struct {
		name     string
		rawQuery string
		want     []byte // nil: an error
	}{
		{"query escaped", "operation=PKIOperation&message=" + url.QueryEscape(b64), msg},
		{"macOS", "operation=PKIOperation&message=" + strings.ReplaceAll(b64, "=", "%3D"), msg},
		{"macOS message first", "message=" + strings.ReplaceAll(b64, "=", "%3D") + "&operation=PKIOperation", msg},
		{"raw everything", "operation=PKIOperation&message=" + b64, msg},
		{"unpadded", "operation=PKIOperation&message=" + strings.TrimRight(b64, "="), msg},
		{"with line breaks", "operation=PKIOperation&message=" + url.QueryEscape(b64[:4]+"\r\n"+b64[4:]), msg},
		{"url-safe alphabet", "operation=PKIOperation&message=" + base64.URLEncoding.EncodeToString(msg), msg},
		{"plus sent as %20", "operation=PKIOperation&message=" + strings.ReplaceAll(url.QueryEscape(b64), "%2B", "%20"), nil},
		{"garbage", "operation=PKIOperation&message=%21%21not-base64%21%21", nil},
		{"no message", "operation=PKIOperation", nil},
		{"empty message", "operation=PKIOperation&message=", nil},
		{"bad escape", "operation=PKIOperation&message=%zz", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := scep.DecodeGETMessage(&url.URL{RawQuery: tc.rawQuery})
			if tc.want == nil {
				if err == nil {
					t.Errorf("DecodeGETMessage(%q) = %x, want an error", tc.rawQuery, got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("DecodeGETMessage(%q) = %x, %v, want %x", tc.rawQuery, got, err, tc.want)
			}
		})
	}
}

// TestBadInput sends what is not a pkiMessage: each gets a 4xx text
// answer, never a 5xx.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	valid := marshal(t, e.message(t))
	b64 := base64.StdEncoding.EncodeToString(valid)
	truncated := valid[:len(valid)/2]
	tests := []struct {
		name       string
		method     string
		query      string
		body       []byte
		wantStatus int
	}{
		{"GET garbage base64", http.MethodGet, "operation=PKIOperation&message=%21%40%23%24", nil, http.StatusBadRequest},
		{"GET plus as %20", http.MethodGet, "operation=PKIOperation&message=" + strings.ReplaceAll(url.QueryEscape(b64), "%2B", "%20"), nil, http.StatusBadRequest},
		{"GET empty message", http.MethodGet, "operation=PKIOperation&message=", nil, http.StatusBadRequest},
		{"GET base64 of garbage", http.MethodGet, "operation=PKIOperation&message=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("hello, world"))), nil, http.StatusBadRequest},
		{"GET truncated", http.MethodGet, "operation=PKIOperation&message=" + url.QueryEscape(base64.StdEncoding.EncodeToString(truncated)), nil, http.StatusBadRequest},
		{"POST garbage", http.MethodPost, "operation=PKIOperation", []byte("this is not DER"), http.StatusBadRequest},
		{"POST base64 instead of DER", http.MethodPost, "operation=PKIOperation", []byte(b64), http.StatusBadRequest},
		{"POST truncated", http.MethodPost, "operation=PKIOperation", truncated, http.StatusBadRequest},
		{"POST empty", http.MethodPost, "operation=PKIOperation", nil, http.StatusBadRequest},
		{"POST over 2 MiB", http.MethodPost, "operation=PKIOperation", bytes.Repeat([]byte{0x30}, maxBody+1), http.StatusRequestEntityTooLarge},
		{"POST exactly 2 MiB garbage", http.MethodPost, "operation=PKIOperation", bytes.Repeat([]byte{0x30}, maxBody), http.StatusBadRequest},
		{"POST envelope only", http.MethodPost, "operation=PKIOperation", mustEncrypt(t, []byte("x"), e.f.recipient), http.StatusBadRequest},
		{"POST unknown operation", http.MethodPost, "operation=Nope", valid, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, e.url+"?"+tc.query, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, body := e.roundTrip(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("%s = %d %q, want %d", tc.name, resp.StatusCode, body, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("%s Content-Type = %q, want text/plain; charset=utf-8", tc.name, ct)
			}
		})
	}
}

func mustEncrypt(t *testing.T, plain []byte, rcpt *x509.Certificate) []byte {
	t.Helper()
	env, err := cms.Encrypt(plain, rcpt, defaultParams)
	if err != nil {
		t.Fatalf("cms.Encrypt() = %v", err)
	}
	return env
}
