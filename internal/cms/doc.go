// Package cms decrypts and produces CMS EnvelopedData (RFC 5652, Section 6) with
// key-transport (RSA) recipients, the pkcsPKIEnvelope of SCEP (RFC 8894, Section
// 3.2.2). It also reads and writes AuthEnvelopedData (RFC 5083) with AES-GCM,
// which is what OpenSSL emits for GCM.
//
// It exists because github.com/smallstep/pkcs7 configures Encrypt through package
// globals (racy in a server), lacks AES-192, and cannot make a reply mirror the
// request. Decrypt reports the algorithms it found as Params, and Encrypt takes
// Params, so a CertRep uses the request's content encryption and key transport
// (PROTOCOLS.md §1.6, "Reply rule").
//
// What this package owns: recipient selection, RSA key transport (PKCS #1 v1.5 and
// RSAES-OAEP per RFC 4055), content encryption (DES-CBC, DES-EDE3-CBC, AES-CBC,
// AES-GCM per RFC 5084), and the two sentinel errors the SCEP layer maps to
// failInfo: ErrUnsupportedAlgorithm (badAlg) and ErrDecrypt (badMessageCheck).
//
// What it must not do: parse or verify SignedData (smallstep/pkcs7 does that),
// decide policy (the minimum cipher is the caller's; Strength only orders
// ciphers), keep mutable package state, import other scepca packages except
// internal/ber, or panic on any input. Errors from hostile input never reveal
// whether RSA padding was valid: PKCS #1 v1.5 key transport uses implicit
// rejection (a random key on bad padding) so a padding failure surfaces only as a
// content decryption failure.
package cms
