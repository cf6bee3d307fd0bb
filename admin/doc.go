// Package admin owns scepca's administration REST API under /api/v1: device
// integrations (secrets shown once), certificate authorities, issued
// certificates (list, get, revoke, hold), and the bearer-token check and JSON
// problem documents every API response shares. It also serves the public
// revocation routes, /crl/{caID}.crl and /ocsp, from a ca.Revocation
// (revocation.go).
// It writes through the store and challenge packages; it never signs
// certificates itself and imports neither scep nor cmd.
package admin
