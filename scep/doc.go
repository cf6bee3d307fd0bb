// Package scep owns scepca's SCEP (RFC 8894) surface: the HTTP handler that
// decodes GetCACaps, GetCACert and PKIOperation requests as real clients send
// them, and the enrollment service that runs challenge → issue → reply for
// PKCSReq, RenewalReq, CertPoll, GetCert and GetCRL. Errors become a signed
// CertRep FAILURE or an HTTP status in exactly one place (errors.go). It
// signs only through the narrow interface it declares for the CA, never
// touches key material itself beyond the recipient key it is handed, and
// imports neither admin nor cmd.
package scep
