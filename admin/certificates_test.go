package admin_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/store"
)

// certJSON sends a request that answers a certificate, and decodes it.
func (f *revFixture) certJSON(t *testing.T, method, path, reqBody string) *admin.Certificate {
	t.Helper()
	what := method + " " + path + " " + reqBody
	resp, body := f.do(t, method, path, reqBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s = %d %s", what, resp.StatusCode, body)
	}
	var c admin.Certificate
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%s: decode %s: %v", what, body, err)
	}
	return &c
}

func TestGetCertificate(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	cert, rec := f.issue(t, "i1", "alice", "D1")
	// Any case, leading zeros and colons name the same certificate.
	loose := "00:" + strings.ToLower(rec.Serial)
	c := f.certJSON(t, http.MethodGet, "/api/v1/certificates/"+loose, "")
	if c.Serial != rec.Serial || c.CAID != f.a.IntermediateID() || c.IntegrationID != "i1" || c.User != "alice" || c.DeviceID != "D1" ||
		c.Status != store.CertIssued || !c.RevokedAt.IsZero() || c.RevocationReason != "" || len(c.SHA256) != 64 || !c.NotAfter.Equal(cert.NotAfter) {
		t.Errorf("GET certificate = %+v, want the record of %s", c, rec.Serial)
	}
	if b, _ := pem.Decode([]byte(c.PEM)); b == nil || !bytes.Equal(b.Bytes, cert.Raw) {
		t.Errorf("GET certificate pem = %q, want the certificate", c.PEM)
	}

	resp, body := f.do(t, http.MethodGet, "/api/v1/certificates/"+rec.Serial+"?format=pem", "")
	if b, _ := pem.Decode(body); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pem-file" || b == nil || !bytes.Equal(b.Bytes, cert.Raw) {
		t.Errorf("GET ?format=pem = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = f.do(t, http.MethodGet, "/api/v1/certificates/"+rec.Serial+"?format=der", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-cert" || !bytes.Equal(body, cert.Raw) {
		t.Errorf("GET ?format=der = %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}

	for _, tc := range []struct {
		name, path string
		status     int
		detail     string
	}{
		{"unknown serial", "/api/v1/certificates/ABCDEF", http.StatusNotFound, "no certificate with serial ABCDEF"},
		{"not hex", "/api/v1/certificates/xyz", http.StatusBadRequest, "hexadecimal"},
		{"zero", "/api/v1/certificates/00", http.StatusBadRequest, "hexadecimal"},
		{"too long", "/api/v1/certificates/" + strings.Repeat("F", 42), http.StatusBadRequest, "hexadecimal"},
		{"bad format", "/api/v1/certificates/" + rec.Serial + "?format=p12", http.StatusBadRequest, "format must be pem or der"},
	} {
		resp, body := f.do(t, http.MethodGet, tc.path, "")
		wantProblem(t, tc.name, resp, body, tc.status, tc.detail)
	}
	resp, body = f.doAuth(t, http.MethodGet, "/api/v1/certificates/"+rec.Serial, "", "")
	wantProblem(t, "no token", resp, body, http.StatusUnauthorized, "missing bearer token")
}

func TestRevokeCertificate(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	var certs []*x509.Certificate
	var serials []string
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		cert, rec := f.issue(t, "i1", user, "D-"+user)
		certs, serials = append(certs, cert), append(serials, rec.Serial)
	}
	revoke := func(i int, body string) (*http.Response, []byte) {
		t.Helper()
		return f.do(t, http.MethodPost, "/api/v1/certificates/"+serials[i]+"/revoke", body)
	}

	// By name: the CRL and OCSP show it at once.
	c := f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[0]+"/revoke", `{"reason": "keyCompromise"}`)
	if c.Status != store.CertRevoked || c.RevocationReason != "keyCompromise" || c.RevokedAt.IsZero() {
		t.Errorf("revoke = %+v, want REVOKED keyCompromise", c)
	}
	if r := f.ocspStatus(t, certs[0]); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("OCSP after revoke = %d reason %d, want revoked keyCompromise", r.Status, r.RevocationReason)
	}
	if got := f.crl(t); got[serials[0]] != ocsp.KeyCompromise {
		t.Errorf("CRL after revoke = %v, want %s keyCompromise", got, serials[0])
	}

	// By code; a second revocation is a conflict.
	c = f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[1]+"/revoke", `{"reason": 4}`)
	if c.Status != store.CertRevoked || c.RevocationReason != "superseded" {
		t.Errorf("revoke 4 = %+v, want REVOKED superseded", c)
	}
	resp, body := revoke(1, `{"reason": "keyCompromise"}`)
	wantProblem(t, "revoke twice", resp, body, http.StatusConflict, "already revoked (superseded)")

	// Hold, hold again (409), unhold, hold, then revoke the held one.
	c = f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/revoke", `{"reason": "certificateHold"}`)
	if c.Status != store.CertOnHold || c.RevocationReason != "certificateHold" {
		t.Errorf("hold = %+v, want ON_HOLD certificateHold", c)
	}
	if r := f.ocspStatus(t, certs[2]); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CertificateHold {
		t.Errorf("OCSP after hold = %d reason %d, want revoked certificateHold", r.Status, r.RevocationReason)
	}
	resp, body = revoke(2, `{"reason": 6}`)
	wantProblem(t, "hold twice", resp, body, http.StatusConflict, "already on hold")
	c = f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/unhold", "")
	if c.Status != store.CertIssued || c.RevocationReason != "" || !c.RevokedAt.IsZero() {
		t.Errorf("unhold = %+v, want ISSUED", c)
	}
	if r := f.ocspStatus(t, certs[2]); r.Status != ocsp.Good {
		t.Errorf("OCSP after unhold = %d, want good", r.Status)
	}
	if got := f.crl(t); len(got) != 2 {
		t.Errorf("CRL after unhold = %v, want the two revoked only", got)
	}
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/unhold", "{}")
	wantProblem(t, "unhold an issued one", resp, body, http.StatusConflict, "is ISSUED, not ON_HOLD")
	f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/revoke", `{"reason": "CERTIFICATEHOLD"}`)
	c = f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/revoke", `{"reason": "cessationOfOperation"}`)
	if c.Status != store.CertRevoked || c.RevocationReason != "cessationOfOperation" {
		t.Errorf("revoke held = %+v, want REVOKED cessationOfOperation", c)
	}
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/"+serials[2]+"/unhold", "")
	wantProblem(t, "unhold a revoked one", resp, body, http.StatusConflict, "is REVOKED, not ON_HOLD")

	for _, ev := range []string{`"msg":"certificate.revoke","target":"` + serials[0] + `"`, `"msg":"certificate.hold"`, `"msg":"certificate.unhold"`, `"reason":"keyCompromise"`} {
		if !strings.Contains(f.audit.String(), ev) {
			t.Errorf("audit log lacks %s:\n%s", ev, f.audit.String())
		}
	}

	for _, tc := range []struct {
		name, body string
		status     int
		detail     string
	}{
		{"no body", "", http.StatusBadRequest, "invalid JSON body"},
		{"no reason", `{}`, http.StatusBadRequest, "reason is required"},
		{"null reason", `{"reason": null}`, http.StatusBadRequest, "reason is required"},
		{"removeFromCRL", `{"reason": "removeFromCRL"}`, http.StatusBadRequest, "unhold"},
		{"removeFromCRL code", `{"reason": 8}`, http.StatusBadRequest, "unhold"},
		{"unused code 7", `{"reason": 7}`, http.StatusBadRequest, "not an RFC 5280 CRLReason"},
		{"code 11", `{"reason": 11}`, http.StatusBadRequest, "not an RFC 5280 CRLReason"},
		{"negative", `{"reason": -1}`, http.StatusBadRequest, "not an RFC 5280 CRLReason"},
		{"fraction", `{"reason": 1.5}`, http.StatusBadRequest, "not an RFC 5280 CRLReason"},
		{"unknown name", `{"reason": "lostIt"}`, http.StatusBadRequest, "keyCompromise"},
		{"boolean", `{"reason": true}`, http.StatusBadRequest, "not an RFC 5280 CRLReason"},
		{"unknown field", `{"reason": 1, "why": "x"}`, http.StatusBadRequest, "unknown field"},
		{"trailing data", `{"reason": 1} {}`, http.StatusBadRequest, "trailing data"},
		{"too large", `{"reason": "` + strings.Repeat("a", maxBody) + `"}`, http.StatusRequestEntityTooLarge, "too large"},
	} {
		resp, body := revoke(3, tc.body)
		wantProblem(t, tc.name, resp, body, tc.status, tc.detail)
	}
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/ABCDEF/revoke", `{"reason": 1}`)
	wantProblem(t, "revoke unknown", resp, body, http.StatusNotFound, "no certificate")
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/nothex/revoke", `{"reason": 1}`)
	wantProblem(t, "revoke bad serial", resp, body, http.StatusBadRequest, "hexadecimal")
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/ABCDEF/unhold", ``)
	wantProblem(t, "unhold unknown", resp, body, http.StatusNotFound, "no certificate")
	resp, body = f.do(t, http.MethodPost, "/api/v1/certificates/"+serials[3]+"/unhold", `{"x": 1}`)
	wantProblem(t, "unhold with a body", resp, body, http.StatusBadRequest, "no body")
	if got := f.crl(t); len(got) != 3 {
		t.Errorf("CRL = %v, want three entries (the refused requests changed nothing)", got)
	}
}

// TestUnholdDeactivatedDevice: a hold placed by deactivating the device is
// lifted by activating it, not through the certificates API.
func TestUnholdDeactivatedDevice(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	_, rec := f.issue(t, "i1", "erin", "DEV-E")
	ctx := t.Context()
	if _, _, err := f.db.RecordAttestation(ctx, &store.Attestation{DeviceID: "DEV-E", Platform: "MACOS", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SetDeviceStatus(ctx, "DEV-E", store.DeviceDeactivated, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.db.UpdateCertificateStatus(ctx, rec.Serial, store.CertOnHold, time.Now(), 6); err != nil {
		t.Fatal(err)
	}
	resp, body := f.do(t, http.MethodPost, "/api/v1/certificates/"+rec.Serial+"/unhold", "")
	wantProblem(t, "unhold", resp, body, http.StatusConflict, `device "DEV-E" is DEACTIVATED`)
	if _, err := f.db.SetDeviceStatus(ctx, "DEV-E", store.DeviceActive, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+rec.Serial+"/unhold", "")
	if c.Status != store.CertIssued {
		t.Errorf("unhold = %+v, want ISSUED", c)
	}
}

// listPage gets one page of certificates and its next link ("" if none).
func (f *revFixture) listPage(t *testing.T, path string) ([]admin.Certificate, string) {
	t.Helper()
	resp, body := f.do(t, http.MethodGet, path, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
	}
	var page []admin.Certificate
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
	link := resp.Header.Get("Link")
	if link == "" {
		return page, ""
	}
	next, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	if !ok || !strings.HasPrefix(next, "/api/v1/certificates?") {
		t.Fatalf("GET %s Link = %q, want <…>; rel=\"next\"", path, link)
	}
	return page, next
}

// listAll follows the next links from path and returns every serial.
func (f *revFixture) listAll(t *testing.T, path string) (serials []string, pages int) {
	t.Helper()
	for path != "" {
		var page []admin.Certificate
		page, path = f.listPage(t, path)
		pages++
		for _, c := range page {
			serials = append(serials, c.Serial)
		}
		if pages > 20 {
			t.Fatal("more than 20 pages")
		}
	}
	return serials, pages
}

func TestListCertificates(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	type issued struct{ integ, user, device, serial string }
	var all []issued
	for i, spec := range []struct {
		integ, user, device string
		days                int
	}{
		{"i1", "alice", "D1", 30},
		{"i1", "alice", "D2", 365},
		{"i1", "bob", "D3", 10},
		{"i2", "bob", "D3", 365},
		{"i2", "carol", "D4", 5},
	} {
		_, rec := f.issueFor(t, spec.integ, spec.user, spec.device, time.Duration(spec.days)*24*time.Hour)
		all = append(all, issued{spec.integ, spec.user, spec.device, rec.Serial})
		if i == 1 {
			f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+rec.Serial+"/revoke", `{"reason": "superseded"}`)
		}
		if i == 4 {
			f.certJSON(t, http.MethodPost, "/api/v1/certificates/"+rec.Serial+"/revoke", `{"reason": "certificateHold"}`)
		}
	}
	serialsOf := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].serial)
		}
		return out
	}
	same := func(a, b []string) bool {
		if len(a) != len(b) {
			return false
		}
		m := map[string]int{}
		for _, s := range a {
			m[s]++
		}
		for _, s := range b {
			m[s]--
		}
		for _, n := range m {
			if n != 0 {
				return false
			}
		}
		return true
	}

	full, pages := f.listAll(t, "/api/v1/certificates")
	if pages != 1 || !same(full, serialsOf(0, 1, 2, 3, 4)) {
		t.Errorf("list = %v in %d pages, want all five in one", full, pages)
	}
	page, _ := f.listPage(t, "/api/v1/certificates")
	if len(page) != 5 || page[0].Serial != all[4].serial || page[0].Status != store.CertOnHold || page[0].RevocationReason != "certificateHold" || page[0].PEM != "" {
		t.Errorf("list[0] = %+v, want the newest, ON_HOLD, without PEM", page[0])
	}

	soon := time.Now().Add(20 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"integrationId=i1", serialsOf(0, 1, 2)},
		{"user=bob", serialsOf(2, 3)},
		{"deviceId=D3", serialsOf(2, 3)},
		{"status=REVOKED", serialsOf(1)},
		{"status=ON_HOLD", serialsOf(4)},
		{"status=ISSUED&integrationId=i1", serialsOf(0, 2)},
		{"expiringBefore=" + soon, serialsOf(2, 4)},
		{"integrationId=i2&user=bob&deviceId=D3", serialsOf(3)},
		{"user=nobody", nil},
	} {
		// Page by one, so the cursor carries every filter along.
		got, pages := f.listAll(t, "/api/v1/certificates?limit=1&"+tc.query)
		if !same(got, tc.want) || pages != max(len(tc.want), 1) {
			t.Errorf("list ?%s = %v in %d pages, want %v", tc.query, got, pages, tc.want)
		}
	}

	// Pages of two: 2 + 2 + 1, newest first, nothing twice.
	paged, pages := f.listAll(t, "/api/v1/certificates?limit=2")
	if pages != 3 || strings.Join(paged, ",") != strings.Join(full, ",") {
		t.Errorf("list by 2 = %v in %d pages, want %v in 3", paged, pages, full)
	}
	// Exactly one page's worth: no next link.
	if _, next := f.listPage(t, "/api/v1/certificates?limit=5"); next != "" {
		t.Errorf("list limit=5 Link = %q, want none", next)
	}

	for _, tc := range []struct {
		name, query, detail string
	}{
		{"unknown parameter", "deviceID=D3", `unknown query parameter "deviceID"`},
		{"repeated", "user=a&user=b", "given 2 times"},
		{"bad status", "status=revoked", "status must be ISSUED, REVOKED or ON_HOLD"},
		{"bad time", "expiringBefore=2027-01-01", "RFC 3339"},
		{"limit 0", "limit=0", "limit must be an integer from 1 to 1000"},
		{"limit too big", "limit=1001", "limit must be"},
		{"limit not a number", "limit=ten", "limit must be"},
		{"cursor not base64", "cursor=!!", "not one this API issued"},
		{"cursor not a serial", "cursor=eHl6", "not one this API issued"},
		{"cursor of no certificate", "cursor=QUJDREVG", "names no certificate"},
	} {
		resp, body := f.do(t, http.MethodGet, "/api/v1/certificates?"+tc.query, "")
		wantProblem(t, tc.name, resp, body, http.StatusBadRequest, tc.detail)
	}
}
