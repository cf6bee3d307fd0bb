// Package ca is scepca's certificate authority: the key-encryption key that
// seals private keys at rest, the root / intermediate / RA hierarchy created
// by Init and loaded by Open, the CSR policy, and the issuance profile of
// the "management attestation" client certificate (DESIGN.md §2,
// PROTOCOLS.md §1.3 and §1.8).
//
// Issuance is two steps, after boulder's lint-before-sign: Prepare checks
// the CSR, builds the certificate template and lints it by signing it with
// a throwaway key; Issue redeems the single-use Token and is the only code
// path that reaches the real issuing key. Issue records the certificate
// through store.CertStore.PutCertificate (put-if-absent on the serial, which
// also completes the SCEP transaction) and writes an audit line before and
// after signing.
//
// Revocation publishes certificate status for every issuing CA it can sign
// for (Authority.Issuer): a cached CRL per CA, signed again when told of a
// change (Changed), after a refresh interval and at half its validity, and
// OCSP answers read from the store on every request. The HTTP routes that
// serve them live in admin.
//
// What ca must not do: speak SCEP or HTTP, import scep or admin, decide
// which integration or challenge a request belongs to, or log private keys
// or the KEK (KEK redacts itself). Private keys never leave the package
// except through Recipient (the SCEP envelope key) and the explicit root-key
// export. Errors are wrapped with context; callers match ErrPolicy,
// ErrNotInitialized, ErrWrongKEK, ErrTokenUsed, ErrRootKeyRemoved,
// ErrBadRootKey, ErrLifecycle, ErrBadRequest and store.ErrExists with
// errors.Is.
//
// Rotation (rotate.go) stages a successor intermediate, activates it and
// retires the one it replaces; the Authority swaps an immutable snapshot
// of its issuing state atomically, so a running server follows without a
// restart.
package ca
