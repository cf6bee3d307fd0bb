package main

import (
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPIPublicRoutes: the routes outside /api/ that the OpenAPI
// document lists (SCEP, challenge page, CRL, OCSP, health, metrics) are
// served by the real server without a token, each answering a status and,
// for success, a content type the document lists; none falls through to
// the mux's own 404 or 405. The /api/v1 routes are checked in admin.
func TestOpenAPIPublicRoutes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	resp, err := http.Get(s.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json without a token = %d, want 200", resp.StatusCode)
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas struct {
				Readiness struct {
					Properties map[string]any `json:"properties"`
					Required   []string       `json:"required"`
				} `json:"Readiness"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode the OpenAPI document: %v", err)
	}
	// The Readiness schema has the members of /readyz's body; the admin
	// tests compare the other schemas with their Go types.
	var members, required []string
	for f := range reflect.TypeFor[readyBody]().Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		members = append(members, name)
		if opts == "" {
			required = append(required, name)
		}
	}
	documented := slices.Sorted(maps.Keys(doc.Components.Schemas.Readiness.Properties))
	slices.Sort(members)
	slices.Sort(required)
	slices.Sort(doc.Components.Schemas.Readiness.Required)
	if !slices.Equal(documented, members) || !slices.Equal(doc.Components.Schemas.Readiness.Required, required) {
		t.Errorf("Readiness schema properties %q, required %q; want %q, %q as readyBody has them",
			documented, doc.Components.Schemas.Readiness.Required, members, required)
	}
	values := map[string]string{
		"integrationID": path.Base(s.SCEPURL),
		"caID":          listCAs(t, s)["INTERMEDIATE"].ID,
		"request":       "placeholder0",
	}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	checked := 0
	for p, item := range doc.Paths {
		if strings.HasPrefix(p, "/api/") {
			continue
		}
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Security  []map[string]any `json:"security"`
				Responses map[string]struct {
					Content map[string]any `json:"content"`
				} `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, p, err)
			}
			for _, req := range op.Security {
				if _, ok := req["bearer"]; ok {
					t.Errorf("%s %s outside /api/ needs a bearer token in the document", method, p)
				}
			}
			url := s.URL + param.ReplaceAllStringFunc(p, func(m string) string {
				if v := values[strings.Trim(m, "{}")]; v != "" {
					return v
				}
				t.Fatalf("%s: no test value for %s", p, m)
				return ""
			})
			name := strings.ToUpper(method) + " " + p
			req, err := http.NewRequestWithContext(t.Context(), strings.ToUpper(method), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checked++
			if string(body) == "404 page not found\n" || string(body) == "Method Not Allowed\n" {
				t.Errorf("%s (%s) is not routed: %d %q", name, url, resp.StatusCode, body)
				continue
			}
			documented, ok := op.Responses[strconv.Itoa(resp.StatusCode)]
			if !ok {
				t.Errorf("%s (%s) = %d %q, which the document does not list", name, url, resp.StatusCode, body)
				continue
			}
			if resp.StatusCode < 300 && len(documented.Content) > 0 {
				mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				if _, ok := documented.Content[mt]; !ok {
					t.Errorf("%s = %d with Content-Type %q, which the document does not list", name, resp.StatusCode, mt)
				}
			}
		}
	}
	if checked < 8 {
		t.Errorf("checked %d public operations, want the SCEP, challenge page, CRL, OCSP, health and metrics routes", checked)
	}
}
