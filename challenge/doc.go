// Package challenge owns the SCEP challenge contract (Validator) and the
// challenge types that need no outside service: the static per-integration
// secret here, the dynamic NDES-compatible one-time challenge beside it, and
// Intune delegation in challenge/intune. It decides whether a challenge is
// acceptable; it does not parse SCEP messages or sign anything, and it
// imports neither scep nor admin.
package challenge
