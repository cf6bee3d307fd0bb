package admin

// Route is one entry of the route table, for the OpenAPI test.
type Route struct {
	Pattern string
	Scopes  []string
	Public  bool
}

// Routes returns a's route table.
func Routes(a *API) []Route {
	var out []Route
	for _, r := range a.routes() {
		out = append(out, Route{Pattern: r.pattern, Scopes: r.scopes, Public: r.public})
	}
	return out
}

// RotateRequest is the body of POST /api/v1/certificate-authorities/rotate.
type RotateRequest = rotateRequest
