package admin_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/challenge/intune"
	"github.com/scepca/scepca/store"
)

// jsonField is one JSON member of a Go type as encoding/json sees it.
type jsonField struct {
	typ      reflect.Type
	optional bool // omitempty or omitzero
}

// jsonFields returns the JSON members of struct type t, embedded structs
// flattened.
func jsonFields(t reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool { return o == "omitempty" || o == "omitzero" })
		out[name] = jsonField{typ: f.Type, optional: optional}
	}
	return out
}

// schemaType is the OpenAPI type of a Go type, "" when any will do.
func schemaType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "string"
	case t == reflect.TypeFor[json.RawMessage]():
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

// TestOpenAPISchemasMatchGoTypes: each schema of the document has exactly
// the JSON members of the Go type the code encodes or decodes, with
// matching types (date-time for time.Time); a response schema requires
// exactly the members that are never omitted.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	t.Parallel()
	d := fetchOpenAPI(t, newFixture(t))
	tests := []struct {
		schema   string
		typ      reflect.Type
		response bool
	}{
		{"Problem", reflect.TypeFor[admin.Problem](), true},
		{"IntegrationRequest", reflect.TypeFor[admin.IntegrationRequest](), false},
		{"IntuneSettings", reflect.TypeFor[admin.IntuneSettings](), false},
		{"Integration", reflect.TypeFor[admin.Integration](), true},
		{"IntuneView", reflect.TypeFor[admin.IntuneView](), true},
		{"ResetSecretRequest", reflect.TypeFor[admin.ResetSecretRequest](), false},
		{"DeletedIntegration", reflect.TypeFor[admin.DeletedIntegration](), true},
		{"IntuneDiagnosis", reflect.TypeFor[intune.Diagnosis](), true},
		{"IntuneCheck", reflect.TypeFor[intune.Check](), true},
		{"CertificateAuthority", reflect.TypeFor[admin.CertificateAuthority](), true},
		{"RotateRequest", reflect.TypeFor[admin.RotateRequest](), false},
		{"Device", reflect.TypeFor[admin.Device](), true},
		{"DeviceCertificate", reflect.TypeFor[admin.DeviceCertificate](), true},
		{"Certificate", reflect.TypeFor[admin.Certificate](), true},
		{"RevokeRequest", reflect.TypeFor[admin.RevokeRequest](), false},
		{"Events", reflect.TypeFor[admin.Events](), true},
		{"Event", reflect.TypeFor[store.Event](), true},
		{"TokenRequest", reflect.TypeFor[admin.TokenRequest](), false},
		{"TokenInfo", reflect.TypeFor[admin.TokenInfo](), true},
		{"CreatedToken", reflect.TypeFor[admin.CreatedToken](), true},
		{"NonceResponse", reflect.TypeFor[attest.NonceResponse](), true},
		{"IssuerInfo", reflect.TypeFor[attest.IssuerInfo](), true},
		{"VerifyRequest", reflect.TypeFor[attest.VerifyRequest](), false},
		{"TPMEvidence", reflect.TypeFor[attest.TPMEvidence](), false},
		{"DeviceContext", reflect.TypeFor[attest.DeviceContext](), true},
		{"CertificateInfo", reflect.TypeFor[attest.CertificateInfo](), true},
	}
	covered := map[string]bool{"EmptyObject": true, "Readiness": true} // Readiness: cmd/scepca checks it
	for _, tt := range tests {
		covered[tt.schema] = true
	}
	schemas, _ := d.raw["components"].(map[string]any)["schemas"].(map[string]any)
	for name := range schemas {
		if !covered[name] {
			t.Errorf("schema %s is not compared with a Go type", name)
		}
	}
	for _, tt := range tests {
		s := d.deref(t, map[string]any{"$ref": "#/components/schemas/" + tt.schema})
		props, _ := s["properties"].(map[string]any)
		fields := jsonFields(tt.typ)
		if s["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties = %v, want false (the code writes and decodes no other members)", tt.schema, s["additionalProperties"])
		}
		for name, f := range fields {
			p, ok := props[name]
			if !ok {
				t.Errorf("%s lacks property %q of %v", tt.schema, name, tt.typ)
				continue
			}
			ps := d.deref(t, p)
			want := schemaType(f.typ)
			var got []string
			switch typ := ps["type"].(type) {
			case string:
				got = []string{typ}
			case []any:
				for _, x := range typ {
					got = append(got, x.(string))
				}
			}
			if want != "" && !slices.Contains(got, want) {
				t.Errorf("%s.%s: type %v, want %s (Go %v)", tt.schema, name, got, want, f.typ)
			}
			if f.typ == reflect.TypeFor[time.Time]() && ps["format"] != "date-time" {
				t.Errorf("%s.%s: format %v, want date-time", tt.schema, name, ps["format"])
			}
		}
		for name := range props {
			if _, ok := fields[name]; !ok {
				t.Errorf("%s has property %q, which %v does not have", tt.schema, name, tt.typ)
			}
		}
		if !tt.response {
			continue
		}
		var required, want []string
		list, _ := s["required"].([]any)
		for _, r := range list {
			required = append(required, r.(string))
		}
		for name, f := range fields {
			if !f.optional {
				want = append(want, name)
			}
		}
		slices.Sort(required)
		slices.Sort(want)
		if !slices.Equal(required, want) {
			t.Errorf("%s: required = %q, want the members %v never omits: %q", tt.schema, required, tt.typ, want)
		}
	}
}
