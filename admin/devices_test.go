package admin_test

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// listAll follows the Link rel="next" headers from path and returns the
// pages' IDs.
func (f *fixture) listAll(t *testing.T, path string) [][]string {
	t.Helper()
	var pages [][]string
	for path != "" {
		resp, b := f.do(t, http.MethodGet, path, "")
		devs := decode[[]admin.Device](t, "GET "+path, resp, b, http.StatusOK)
		var ids []string
		for _, d := range devs {
			ids = append(ids, d.ID)
			if d.Certificates != nil {
				t.Errorf("list shows certificates of %s; only get does", d.ID)
			}
		}
		pages = append(pages, ids)
		path = ""
		if l := resp.Header.Get("Link"); l != "" {
			m := nextLink.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("Link = %q, want <…>; rel=\"next\"", l)
			}
			path = m[1]
		}
		if len(pages) > 20 {
			t.Fatal("pagination does not end")
		}
	}
	return pages
}

// TestDevicesListAndFilter: filters, limit + cursor pagination with Link
// headers, tombstones only on request, and 400s for bad queries.
func TestDevicesListAndFilter(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	ios := f.create(t, `{"name":"iPhones","platform":"IOS"}`)
	android := f.create(t, `{"name":"Pixels","platform":"ANDROID"}`)
	c := f.client()
	var all []string
	for i := range 7 {
		in, platform := ios, attest.PlatformIOS
		if i%3 == 2 {
			in, platform = android, attest.PlatformAndroid
		}
		id := fmt.Sprintf("dev-%02d", i)
		if dc, err := c.AttestMobile(t.Context(), in.ID, attest.Hint(in.SecretKey), id, platform); err != nil || !dc.Managed {
			t.Fatalf("AttestMobile(%s) = %+v, %v", id, dc, err)
		}
		all = append(all, id)
	}
	// A desktop device with a user, from a certificate's subject.
	key := testpki.NewECKey(t, elliptic.P256())
	cert := issue(t, f.ca, key, "carol managementAttestation dev-desk")
	if dc, err := c.AttestDesktop(t.Context(), key, cert, "dev-desk", attest.PlatformMacOS, ""); err != nil || !dc.Managed {
		t.Fatalf("AttestDesktop = %+v, %v", dc, err)
	}
	all = append(all, "dev-desk")
	for path, status := range map[string]string{"dev-01": "suspend", "dev-03": "deactivate", "dev-04": "delete"} {
		if resp, b := f.do(t, http.MethodPost, "/api/v1/devices/"+path+"/lifecycle/"+status, ""); status != "delete" && resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d %s", status, path, resp.StatusCode, b)
		}
	}
	if resp, b := f.do(t, http.MethodDelete, "/api/v1/devices/dev-04", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE dev-04 = %d %s", resp.StatusCode, b)
	}
	live := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == "dev-04" })

	tests := []struct {
		name  string
		query string
		want  [][]string
	}{
		{"all but tombstones", "", [][]string{live}},
		{"pages of 3", "?limit=3", [][]string{live[:3], live[3:6], live[6:]}},
		{"pages of 7 (exact)", "?limit=7", [][]string{live}},
		{"status ACTIVE", "?status=ACTIVE", [][]string{{"dev-00", "dev-02", "dev-05", "dev-06", "dev-desk"}}},
		{"status SUSPENDED", "?status=SUSPENDED", [][]string{{"dev-01"}}},
		{"status DEACTIVATED", "?status=DEACTIVATED", [][]string{{"dev-03"}}},
		{"tombstones", "?status=DELETED", [][]string{{"dev-04"}}},
		{"platform ANDROID", "?platform=ANDROID", [][]string{{"dev-02", "dev-05"}}},
		{"platform MACOS", "?platform=MACOS", [][]string{{"dev-desk"}}},
		{"integration, paged", "?integrationId=" + ios.ID + "&limit=2", [][]string{{"dev-00", "dev-01"}, {"dev-03", "dev-06"}}},
		{"user", "?user=carol", [][]string{{"dev-desk"}}},
		{"nothing", "?user=nobody", [][]string{nil}},
	}
	for _, tc := range tests {
		got := f.listAll(t, "/api/v1/devices"+tc.query)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("list %s = %v, want %v", tc.name, got, tc.want)
		}
	}

	// The cursor in a Link keeps the filters and is opaque.
	resp, _ := f.do(t, http.MethodGet, "/api/v1/devices?platform=IOS&limit=1", "")
	m := nextLink.FindStringSubmatch(resp.Header.Get("Link"))
	if m == nil {
		t.Fatalf("Link = %q, want a next link", resp.Header.Get("Link"))
	}
	u, err := url.Parse(m[1])
	if err != nil || u.Path != "/api/v1/devices" || u.Query().Get("platform") != "IOS" || u.Query().Get("limit") != "1" || strings.Contains(u.Query().Get("cursor"), "dev-") {
		t.Errorf("next link = %q, want the same path and filters and an opaque cursor", m[1])
	}

	for _, tc := range []struct{ name, query, detail string }{
		{"status", "?status=GONE", "status must be ACTIVE, SUSPENDED, DEACTIVATED or DELETED"},
		{"platform", "?platform=DESKTOP", "platform must be MACOS, WINDOWS, IOS or ANDROID"},
		{"limit zero", "?limit=0", "limit must be an integer between 1 and 1000"},
		{"limit too big", "?limit=1001", "limit must be an integer between 1 and 1000"},
		{"limit not a number", "?limit=ten", "limit must be an integer"},
		{"cursor garbage", "?cursor=%21%21", "cursor is not one this API returned"},
		{"cursor forged", "?cursor=ZGV2LTAx", "cursor is not one this API returned"},
		{"unknown parameter", "?state=ACTIVE", `unknown query parameter "state"`},
	} {
		resp, b := f.do(t, http.MethodGet, "/api/v1/devices"+tc.query, "")
		wantProblem(t, "list "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
	}
}

// TestDeviceLifecycleAPI: each lifecycle action through HTTP, with its
// certificate effect in the store and the verifier's answer; invalid
// transitions are 409, unknown devices 404.
func TestDeviceLifecycleAPI(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	c := f.client()
	key := testpki.NewECKey(t, elliptic.P256())
	cert := issue(t, f.ca, key, "dan managementAttestation LAPTOP-1")
	serial := strings.ToUpper(cert.SerialNumber.Text(16))
	sum := sha256.Sum256(cert.Raw)
	// A second certificate naming the device, never used to attest.
	unused := issue(t, f.ca, testpki.NewECKey(t, elliptic.P256()), "dan managementAttestation LAPTOP-1")
	unusedSerial := strings.ToUpper(unused.SerialNumber.Text(16))
	verify := func() string {
		t.Helper()
		dc, err := c.AttestDesktop(t.Context(), key, cert, "LAPTOP-1", attest.PlatformWindows, "")
		if err != nil {
			t.Fatal(err)
		}
		return dc.Reason
	}
	if got := verify(); got != attest.ReasonManaged {
		t.Fatalf("verify(new device) = %s, want MANAGED", got)
	}

	resp, b := f.do(t, http.MethodGet, "/api/v1/devices/LAPTOP-1", "")
	d := decode[admin.Device](t, "get", resp, b, http.StatusOK)
	wantCerts := []admin.DeviceCertificate{
		{Serial: serial, CAID: f.ca.IntermediateID(), SHA256: strings.ToUpper(hex.EncodeToString(sum[:])), Status: store.CertIssued, NotAfter: cert.NotAfter, Bound: true},
		{Serial: unusedSerial, CAID: f.ca.IntermediateID(), Status: store.CertIssued, NotAfter: unused.NotAfter},
	}
	unusedSum := sha256.Sum256(unused.Raw)
	wantCerts[1].SHA256 = strings.ToUpper(hex.EncodeToString(unusedSum[:]))
	if d.ID != "LAPTOP-1" || d.Status != store.DeviceActive || d.Platform != attest.PlatformWindows || d.User != "dan" || fmt.Sprint(d.Certificates) != fmt.Sprint(wantCerts) {
		t.Errorf("get = %+v\nwant ACTIVE WINDOWS device of dan with certificates %+v", d, wantCerts)
	}

	steps := []struct {
		method, action string
		status         int
		device         string // status after
		cert           string // both certificates' status after
		verify         string
		detail         string
	}{
		// Asking for the state the device is in succeeds (attest.Lifecycle
		// re-applies the effects, so an interrupted change can be finished).
		{http.MethodPost, "unsuspend", http.StatusOK, store.DeviceActive, store.CertIssued, attest.ReasonManaged, ""},
		{http.MethodPost, "suspend", http.StatusOK, store.DeviceSuspended, store.CertIssued, attest.ReasonDeviceSuspended, ""},
		{http.MethodPost, "suspend", http.StatusOK, store.DeviceSuspended, store.CertIssued, attest.ReasonDeviceSuspended, ""},
		{http.MethodPost, "activate", http.StatusConflict, "", "", "", "is SUSPENDED: activate applies to a DEACTIVATED device"},
		{http.MethodPost, "unsuspend", http.StatusOK, store.DeviceActive, store.CertIssued, attest.ReasonManaged, ""},
		{http.MethodPost, "deactivate", http.StatusOK, store.DeviceDeactivated, store.CertOnHold, attest.ReasonCertOnHold, ""},
		{http.MethodPost, "suspend", http.StatusConflict, "", "", "", `device "LAPTOP-1" is DEACTIVATED: suspend applies to an ACTIVE device`},
		{http.MethodPost, "unsuspend", http.StatusConflict, "", "", "", "is DEACTIVATED: unsuspend applies to a SUSPENDED device"},
		{http.MethodPost, "activate", http.StatusOK, store.DeviceActive, store.CertIssued, attest.ReasonManaged, ""},
		{http.MethodDelete, "", http.StatusOK, store.DeviceDeleted, store.CertRevoked, attest.ReasonCertRevoked, ""},
		{http.MethodPost, "activate", http.StatusConflict, "", "", "", "is DELETED"},
		{http.MethodDelete, "", http.StatusOK, store.DeviceDeleted, store.CertRevoked, attest.ReasonCertRevoked, ""},
	}
	for _, st := range steps {
		path := "/api/v1/devices/LAPTOP-1"
		if st.action != "" {
			path += "/lifecycle/" + st.action
		}
		what := st.method + " " + path
		resp, b := f.do(t, st.method, path, "")
		if st.status != http.StatusOK {
			wantProblem(t, what, resp, b, st.status, st.detail)
			continue
		}
		d := decode[admin.Device](t, what, resp, b, http.StatusOK)
		if d.Status != st.device || len(d.Certificates) != 2 {
			t.Errorf("%s = %+v, want %s with 2 certificates", what, d, st.device)
		}
		for _, dc := range d.Certificates {
			rec, err := f.db.GetCertificate(t.Context(), dc.Serial)
			if err != nil || rec.Status != st.cert || dc.Status != st.cert {
				t.Errorf("after %s certificate %s: API %s, store %v (%v), want %s", what, dc.Serial, dc.Status, rec, err, st.cert)
			}
		}
		if got := verify(); got != st.verify {
			t.Errorf("verify after %s = %s, want %s", what, got, st.verify)
		}
	}
	for _, ev := range []string{"suspend", "unsuspend", "deactivate", "activate", "delete"} {
		if !strings.Contains(f.audit.String(), `"device.lifecycle.`+ev+`"`) {
			t.Errorf("audit lacks device.lifecycle.%s", ev)
		}
	}

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/devices/NOPE"},
		{http.MethodPost, "/api/v1/devices/NOPE/lifecycle/suspend"},
		{http.MethodPost, "/api/v1/devices/NOPE/lifecycle/unsuspend"},
		{http.MethodPost, "/api/v1/devices/NOPE/lifecycle/deactivate"},
		{http.MethodPost, "/api/v1/devices/NOPE/lifecycle/activate"},
		{http.MethodDelete, "/api/v1/devices/NOPE"},
	} {
		resp, b := f.do(t, tc.method, tc.path, "")
		wantProblem(t, tc.method+" "+tc.path, resp, b, http.StatusNotFound, `no device "NOPE"`)
	}
	resp, b = f.do(t, http.MethodPost, "/api/v1/devices/LAPTOP-1/lifecycle/wipe", "")
	wantProblem(t, "unknown action", resp, b, http.StatusNotFound, "no such API route")
}
