// Package attest is scepca's attestation verifier (DESIGN.md §1.3, §2, §4;
// PROTOCOLS.md §4.2): it mints single-use nonces, checks desktop proofs (a
// nonce signed by the key of a certificate from a trusted issuer) and mobile
// proofs (an HMAC keyed by an integration's managementHint), binds each
// certificate to the first device that attests with it, honours device
// lifecycle and revocation, and answers a DeviceContext: managed or not, a
// stable reason (reasons.go), and the facts behind it.
//
// It owns the exact bytes a device signs (Message), so the verifier, the
// Go client (attest/client) and `scepca attest` sign and check the same
// bytes. Its verifying core is pure: Verifier takes its nonce consumer,
// trust anchors, certificate and revocation lookups, device recorder and
// clock as small interfaces, so it is fuzzed without a database. It also
// owns the background Sweeper (90-day unused revocation, expired nonces)
// and the lifecycle effects on certificates (Lifecycle).
//
// It must not import scep, admin or cmd, must not answer HTTP (admin turns
// its errors into problem documents), and never logs or returns a secret:
// managementHint values are Hint, which prints as REDACTED.
package attest
