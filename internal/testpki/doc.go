// Package testpki mints test PKI at run time for the tests of other packages: RSA
// and EC keys, SCEP-client-style self-signed certificates (including the
// Windows-style critical AuthorityKeyIdentifier that Go refuses to parse), PKCS #10
// requests with a challengePassword, a root and intermediate CA, and BER
// re-encodings of DER messages.
//
// What it owns: fixtures, never on disk (STYLE.md §7). Every helper takes a
// testing.TB, calls tb.Helper, and fails the test with tb.Fatal; none returns an
// error.
//
// What it must not do: be imported by non-test code, import any scepca package other
// than internal/ber, or keep mutable state other than the RSA key cache (which hands
// the same immutable key to every caller asking for the same size and index).
package testpki
