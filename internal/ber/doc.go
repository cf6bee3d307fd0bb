// Package ber normalises BER (X.690 Basic Encoding Rules) to the definite-length,
// minimal-header encoding that Go's encoding/asn1 and cryptobyte accept.
//
// SCEP clients (notably Apple's, see PROTOCOLS.md §1.6) send PKCS#7/CMS messages in
// BER with indefinite lengths and constructed ("chunked") OCTET STRINGs, while Go's
// ASN.1 parsers are DER-only. ToDER bridges that gap; ToIndefinite does the reverse
// for tests.
//
// What this package owns: the byte-level TLV rewriting (lengths, tag forms, flattening
// constructed universal string types). What it must not do: interpret content (it
// knows nothing of CMS, X.509 or SCEP), sort SET OF members, re-validate primitive
// contents, import any other scepca package, or panic on any input. Recursion is
// bounded by MaxDepth, and every error wraps ErrMalformed.
package ber
