// Package admin owns scepca's administration REST API under /api/v1: device
// integrations (secrets shown once), certificate authorities, issued
// certificates (list, get, revoke, hold), the audit log (GET /api/v1/logs),
// API tokens and their scopes, and the bearer-token check and JSON problem
// documents every API response shares. It also serves the public revocation
// routes, /crl/{caID}.crl and /ocsp, from a ca.Revocation (revocation.go).
// It writes through the store and challenge packages; it never signs
// certificates itself and imports neither scep nor cmd. It sets the audit
// actor of each request from its token (auditlog.WithActor).
package admin
