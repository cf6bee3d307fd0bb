package admin_test

import (
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// openAPIDoc is the decoded OpenAPI document with the lookups the tests
// need.
type openAPIDoc struct {
	raw map[string]any
}

// operation is one method of one path in the document.
type operation struct {
	method, path string
	op           map[string]any
	item         map[string]any // the path item, for its parameters
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// fetchOpenAPI gets the document the way integrators do: without a token.
func fetchOpenAPI(t *testing.T, f *fixture) *openAPIDoc {
	t.Helper()
	resp, b := f.doAuth(t, http.MethodGet, admin.OpenAPIPath, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s without a token = %d %s, want 200", admin.OpenAPIPath, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s Content-Type = %q, want application/json", admin.OpenAPIPath, ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	return &openAPIDoc{raw: raw}
}

func (d *openAPIDoc) operations(t *testing.T) []operation {
	t.Helper()
	paths, ok := d.raw["paths"].(map[string]any)
	if !ok {
		t.Fatal("the document has no paths object")
	}
	var ops []operation
	for p, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", p)
		}
		for _, m := range httpMethods {
			if o, ok := item[m].(map[string]any); ok {
				ops = append(ops, operation{method: strings.ToUpper(m), path: p, op: o, item: item})
			}
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	return ops
}

// resolve follows a local $ref ("#/components/...") to its target.
func (d *openAPIDoc) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = d.raw
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not inside an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

// deref returns v, or what it refers to when it is a {"$ref": …} object.
func (d *openAPIDoc) deref(t *testing.T, v any) map[string]any {
	t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var err error
		if v, err = d.resolve(ref); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("$ref chain too long at %v", v)
	return nil
}

// isPublic reports whether op takes no bearer token.
func isPublic(op map[string]any) bool {
	sec, ok := op["security"].([]any)
	if !ok {
		return false // the document's default: bearer
	}
	for _, req := range sec {
		if m, ok := req.(map[string]any); ok {
			if _, ok := m["bearer"]; ok {
				return false
			}
		}
	}
	return true
}

// TestOpenAPIDocument: the document is OpenAPI 3.1, every $ref resolves,
// and every operation has a unique operationId, a summary and tags, a 2xx
// and, unless public, 401 and 403 answers and its scope; every path
// template parameter is declared, and only those.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	d := fetchOpenAPI(t, newFixture(t))
	if v, _ := d.raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := d.resolve(ref); err != nil {
					t.Errorf("at %s: %v", path, err)
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", d.raw)

	ids := map[string]string{}
	template := regexp.MustCompile(`\{([^}]+)\}`)
	for _, o := range d.operations(t) {
		name := o.method + " " + o.path
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", name)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", name, other, id)
		}
		ids[id] = name
		if s, _ := o.op["summary"].(string); s == "" {
			t.Errorf("%s has no summary", name)
		}
		if tags, _ := o.op["tags"].([]any); len(tags) == 0 {
			t.Errorf("%s has no tags", name)
		}
		responses, _ := o.op["responses"].(map[string]any)
		has2xx := false
		for code := range responses {
			has2xx = has2xx || strings.HasPrefix(code, "2")
		}
		if !has2xx {
			t.Errorf("%s has no 2xx response", name)
		}
		if !isPublic(o.op) {
			for _, code := range []string{"401", "403"} {
				if _, ok := responses[code]; !ok {
					t.Errorf("%s needs a token but documents no %s", name, code)
				}
			}
			if _, ok := o.op["x-scepca-scope"]; !ok {
				t.Errorf("%s needs a token but has no x-scepca-scope", name)
			}
		}
		declared := map[string]bool{}
		for _, params := range []any{o.item["parameters"], o.op["parameters"]} {
			list, _ := params.([]any)
			for _, p := range list {
				pm := d.deref(t, p)
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
		}
		var inPath []string
		for _, m := range template.FindAllStringSubmatch(o.path, -1) {
			inPath = append(inPath, m[1])
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", name, m[1])
			}
		}
		for p := range declared {
			if !slices.Contains(inPath, p) {
				t.Errorf("%s declares path parameter %q that is not in the path", name, p)
			}
		}
	}
}

// TestOpenAPIMatchesRoutes: the (method, path) pairs under /api/v1 in the
// document are the patterns the API registers, both ways, with the same
// {param} names and the same token scopes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := fetchOpenAPI(t, f)
	api, err := admin.New(admin.Config{Store: openDB(t), TokenHashes: [][]byte{admin.TokenHash("unused")}})
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]admin.Route{}
	for _, r := range admin.Routes(api) {
		registered[r.Pattern] = r
	}
	documented := map[string]operation{}
	for _, o := range d.operations(t) {
		if strings.HasPrefix(o.path, "/api/") {
			documented[o.method+" "+o.path] = o
		}
	}
	for pattern, r := range registered {
		o, ok := documented[pattern]
		if !ok {
			t.Errorf("route %s is not in the OpenAPI document", pattern)
			continue
		}
		if isPublic(o.op) != r.Public {
			t.Errorf("%s: document public = %v, route public = %v", pattern, isPublic(o.op), r.Public)
		}
		var scopes []string
		list, _ := o.op["x-scepca-scope"].([]any)
		for _, s := range list {
			scopes = append(scopes, fmt.Sprint(s))
		}
		if !slices.Equal(scopes, r.Scopes) {
			t.Errorf("%s: x-scepca-scope = %q, route scopes = %q", pattern, scopes, r.Scopes)
		}
		desc, _ := o.op["description"].(string)
		if !r.Public && !strings.Contains(desc, strings.Join(r.Scopes, " or a ")) {
			t.Errorf("%s: description %q does not name the scope %q", pattern, desc, r.Scopes)
		}
	}
	for pattern := range documented {
		if _, ok := registered[pattern]; !ok {
			t.Errorf("the OpenAPI document has %s, which the API does not register", pattern)
		}
	}
}

// placeholderPath fills a path template with placeholder values.
func placeholderPath(p string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(p, "placeholder0")
}

// documentedStatus reports whether status is among op's responses.
func documentedStatus(op map[string]any, status int) bool {
	responses, _ := op["responses"].(map[string]any)
	_, exact := responses[strconv.Itoa(status)]
	_, class := responses[fmt.Sprintf("%dXX", status/100)]
	_, def := responses["default"]
	return exact || class || def
}

// TestOpenAPIOperationsAreRouted: every documented /api/v1 operation is
// routed by the real mux (not answered by the "no such API route"
// catch-all), answers a documented status with placeholder parameters and
// no body, a problem document for any 4xx, and 401 without a token unless
// it is public.
func TestOpenAPIOperationsAreRouted(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	d := fetchOpenAPI(t, f.fixture)
	for _, o := range d.operations(t) {
		if !strings.HasPrefix(o.path, "/api/") {
			continue
		}
		name := o.method + " " + o.path
		path := placeholderPath(o.path)
		resp, b := f.do(t, o.method, path, "")
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			var p admin.Problem
			if json.Unmarshal(b, &p) != nil || strings.HasPrefix(p.Detail, "no such API route") || resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s (%s) is not routed: %d %s", name, path, resp.StatusCode, b)
				continue
			}
		}
		if !documentedStatus(o.op, resp.StatusCode) {
			t.Errorf("%s (%s) = %d %s, which the document does not list", name, path, resp.StatusCode, b)
		}
		if resp.StatusCode >= 400 {
			wantProblem(t, name, resp, b, resp.StatusCode, "")
		}
		if resp.StatusCode < 300 {
			d.wantContentType(t, name, o.op, resp)
		}
		if isPublic(o.op) {
			continue
		}
		resp, b = f.doAuth(t, o.method, path, "", "")
		wantProblem(t, name+" without a token", resp, b, http.StatusUnauthorized, "missing bearer token")
	}
}

// wantContentType checks that a success's Content-Type is one op lists
// for its status, when it lists any.
func (d *openAPIDoc) wantContentType(t *testing.T, name string, op map[string]any, resp *http.Response) {
	t.Helper()
	responses, _ := op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(resp.StatusCode)]
	if !ok {
		return
	}
	content, _ := d.deref(t, r)["content"].(map[string]any)
	if len(content) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		t.Errorf("%s = %d with Content-Type %q, which the document does not list", name, resp.StatusCode, mt)
	}
}

// checkSchema checks a decoded JSON value against a schema of the
// document: types, enums, date-times, required properties present and no
// property the schema does not list (additionalProperties false).
func (d *openAPIDoc) checkSchema(t *testing.T, where string, v any, schema any) {
	t.Helper()
	s := d.deref(t, schema)
	if typ, ok := s["type"]; ok {
		var types []string
		switch typ := typ.(type) {
		case string:
			types = []string{typ}
		case []any:
			for _, x := range typ {
				types = append(types, fmt.Sprint(x))
			}
		}
		if got := jsonType(v); !slices.Contains(types, got) && (got != "integer" || !slices.Contains(types, "number")) {
			t.Errorf("%s = %v is %s, the document says %v", where, v, got, types)
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		t.Errorf("%s = %v, not in the documented enum %v", where, v, enum)
	}
	if c, ok := s["const"]; ok && c != v {
		t.Errorf("%s = %v, the document says %v", where, v, c)
	}
	if s["format"] == "date-time" {
		if str, _ := v.(string); str != "" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				t.Errorf("%s = %q is not a date-time", where, str)
			}
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				t.Errorf("%s lacks the required property %q: %v", where, r, v)
			}
		}
		for k, e := range v {
			if ps, ok := props[k]; ok {
				d.checkSchema(t, where+"."+k, e, ps)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					t.Errorf("%s has property %q, which the document does not list", where, k)
				}
			case map[string]any:
				d.checkSchema(t, where+"."+k, e, ap)
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range v {
				d.checkSchema(t, fmt.Sprintf("%s[%d]", where, i), e, items)
			}
		}
	}
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// response returns the documented JSON schema of op's answer status.
func (d *openAPIDoc) response(t *testing.T, method, path string, status int) any {
	t.Helper()
	for _, o := range d.operations(t) {
		if o.method != method || o.path != path {
			continue
		}
		responses, _ := o.op["responses"].(map[string]any)
		r, ok := responses[strconv.Itoa(status)]
		if !ok {
			t.Fatalf("%s %s documents no %d", method, path, status)
		}
		content, _ := d.deref(t, r)["content"].(map[string]any)
		media, ok := content["application/json"].(map[string]any)
		if !ok {
			t.Fatalf("%s %s %d documents no application/json body", method, path, status)
		}
		return media["schema"]
	}
	t.Fatalf("%s %s is not documented", method, path)
	return nil
}

// checkAnswer sends a request and checks its answer against the document:
// the status is the one expected and the JSON body fits the schema.
func (d *openAPIDoc) checkAnswer(t *testing.T, f *fixture, method, template, path, body string, status int) map[string]any {
	t.Helper()
	resp, b := f.do(t, method, path, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s Content-Type = %q, want application/json", method, path, ct)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s body %s: %v", method, path, b, err)
	}
	d.checkSchema(t, method+" "+path, v, d.response(t, method, template, status))
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return nil
}

// TestOpenAPISchemasMatchAnswers: real answers of key operations fit their
// documented schemas, so the schemas cannot drift from the Go types.
func TestOpenAPISchemasMatchAnswers(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	d := fetchOpenAPI(t, f.fixture)
	const integrations = "/api/v1/device-integrations"

	static := d.checkAnswer(t, f.fixture, http.MethodPost, integrations, integrations,
		`{"name":"Macs","platform":"DESKTOP","challengeType":"STATIC","renewal":true,"validityDays":30,"requireHardwareKey":true}`, http.StatusCreated)
	d.checkAnswer(t, f.fixture, http.MethodPost, integrations, integrations,
		`{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC","ndesEncoding":true,"caChain":"issuerAndChain","minCipher":"aes"}`, http.StatusCreated)
	ios := d.checkAnswer(t, f.fixture, http.MethodPost, integrations, integrations,
		`{"name":"iPhones","platform":"IOS","allowPlainHint":true}`, http.StatusCreated)
	d.checkAnswer(t, f.fixture, http.MethodGet, integrations, integrations, "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodPost, integrations+"/{id}/lifecycle/reset-secret",
		integrations+"/"+static["id"].(string)+"/lifecycle/reset-secret", `{"overlapSeconds":60}`, http.StatusOK)

	// A device from a mobile proof, one from a desktop proof with its
	// certificate, and the certificate revoked.
	c := f.client()
	iosID, hint := ios["id"].(string), attest.Hint(ios["secretKey"].(string))
	if dc, err := c.AttestMobile(t.Context(), iosID, hint, "PHONE-1", attest.PlatformIOS); err != nil || !dc.Managed {
		t.Fatalf("AttestMobile = %+v, %v", dc, err)
	}
	key := testpki.NewECKey(t, elliptic.P256())
	cert := issue(t, f.ca, key, "dora managementAttestation DESK-1")
	if dc, err := c.AttestDesktop(t.Context(), key, cert, "DESK-1", attest.PlatformMacOS, ""); err != nil || !dc.Managed {
		t.Fatalf("AttestDesktop = %+v, %v", dc, err)
	}
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/devices", "/api/v1/devices?limit=1", "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/devices/{id}", "/api/v1/devices/DESK-1", "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodPost, "/api/v1/devices/{id}/lifecycle/suspend", "/api/v1/devices/PHONE-1/lifecycle/suspend", "", http.StatusOK)

	serial := strings.ToUpper(cert.SerialNumber.Text(16))
	d.checkAnswer(t, f.fixture, http.MethodPost, "/api/v1/certificates/{serial}/revoke", "/api/v1/certificates/"+serial+"/revoke", `{"reason":"keyCompromise"}`, http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/certificates", "/api/v1/certificates", "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/certificates/{serial}", "/api/v1/certificates/"+serial, "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/certificate-authorities", "/api/v1/certificate-authorities", "", http.StatusOK)

	at := time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	if err := f.db.AppendEvents(t.Context(), []*store.Event{{
		ID: auditlog.NewEventID(at), Time: at, Type: "certificate.issue", Actor: "scep:" + iosID, Target: serial,
		Outcome: store.OutcomeSuccess, Details: map[string]string{"integrationId": iosID, "messageType": "PKCSReq"},
	}}); err != nil {
		t.Fatal(err)
	}
	logs := d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/logs", "/api/v1/logs?eventType=certificate.", "", http.StatusOK)
	if evs, _ := logs["events"].([]any); len(evs) != 1 {
		t.Errorf("GET /api/v1/logs events = %v, want the one stored", logs["events"])
	}

	tok := d.checkAnswer(t, f.fixture, http.MethodPost, "/api/v1/tokens", "/api/v1/tokens",
		`{"name":"verifier","scope":"VERIFY","expiresAt":"2099-01-01T00:00:00Z"}`, http.StatusCreated)
	if s, _ := tok["token"].(string); !strings.HasPrefix(s, "scepca_") {
		t.Errorf("created token = %v, want scepca_…", tok["token"])
	}
	d.checkAnswer(t, f.fixture, http.MethodGet, "/api/v1/tokens", "/api/v1/tokens", "", http.StatusOK)

	nonce := d.checkAnswer(t, f.fixture, http.MethodPost, "/api/v1/attestation/nonces", "/api/v1/attestation/nonces", "", http.StatusOK)
	d.checkAnswer(t, f.fixture, http.MethodPost, "/api/v1/attestation/verify", "/api/v1/attestation/verify",
		fmt.Sprintf(`{"nonce":%q,"deviceId":"PHONE-2","platform":"ANDROID","integrationId":%q,"managementHint":"wrong-hint-value"}`, nonce["nonce"], iosID), http.StatusOK)
}

// sampleValue is a query value of the parameter schema s.
func sampleValue(s map[string]any) string {
	if items, ok := s["items"].(map[string]any); ok {
		s = items
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return fmt.Sprint(enum[0])
	}
	switch {
	case s["format"] == "date-time":
		return "2026-01-02T15:04:05Z"
	case s["type"] == "integer":
		return "1"
	case s["type"] == "boolean":
		return "false"
	}
	return "placeholder0"
}

// TestOpenAPIQueryParameters: every documented query parameter is one the
// code reads (no "unknown query parameter" for it), and the paged lists
// document their Link header and, taking only their documented
// parameters, refuse another.
func TestOpenAPIQueryParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := fetchOpenAPI(t, f)
	for _, o := range d.operations(t) {
		if !strings.HasPrefix(o.path, "/api/") {
			continue
		}
		list, _ := o.op["parameters"].([]any)
		paged := false
		for _, p := range list {
			pm := d.deref(t, p)
			if pm["in"] != "query" {
				continue
			}
			name := pm["name"].(string)
			paged = paged || name == "cursor"
			path := placeholderPath(o.path) + "?" + url.Values{name: {sampleValue(d.deref(t, pm["schema"]))}}.Encode()
			resp, b := f.do(t, o.method, path, "")
			if strings.Contains(string(b), "unknown query parameter") {
				t.Errorf("%s %s: the documented parameter %q is unknown to the code: %s", o.method, path, name, b)
			}
			if !documentedStatus(o.op, resp.StatusCode) {
				t.Errorf("%s %s = %d %s, which the document does not list", o.method, path, resp.StatusCode, b)
			}
		}
		if paged {
			ok, _ := o.op["responses"].(map[string]any)["200"].(map[string]any)
			if _, link := ok["headers"].(map[string]any)["Link"]; !link {
				t.Errorf("%s %s is paged but its 200 documents no Link header", o.method, o.path)
			}
			path := placeholderPath(o.path) + "?notDocumented=1"
			resp, b := f.do(t, o.method, path, "")
			wantProblem(t, o.method+" "+path, resp, b, http.StatusBadRequest, "unknown query parameter")
		}
	}
}
