package admin

import (
	_ "embed" // the OpenAPI document
	"net/http"
)

// OpenAPIPath is where the API serves its OpenAPI 3.1 document.
const OpenAPIPath = "/api/v1/openapi.json"

// openAPIDocument describes every route of the HTTP interface; the tests
// check it against the route table and the real responses.
//
//go:embed openapi.json
var openAPIDocument []byte

// serveOpenAPI answers the OpenAPI document. It needs no token: it holds
// no secrets and integrators fetch it to generate clients.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err := w.Write(openAPIDocument)
	return err
}
