package attest

import (
	"crypto/hmac"
	"crypto/sha256"
)

// MessageVersion is the first line of every signed message. A future
// format changes it, so a signature over one format never verifies as
// another.
const MessageVersion = "scepca-attest-v1"

// Message returns the exact bytes a device signs: three UTF-8 lines, each
// ended by a single "\n", so the message ends with "\n":
//
//	scepca-attest-v1\n<nonce>\n<deviceId>\n
//
// The nonce is exactly as the nonce endpoint returned it. See DESIGN.md §4.
// Desktop proofs sign it with RSA PKCS #1 v1.5, RSA-PSS or ECDSA, all with
// SHA-256; mobile proofs are HMAC-SHA256 over it (MobileProof).
func Message(nonce, deviceID string) []byte {
	b := make([]byte, 0, len(MessageVersion)+len(nonce)+len(deviceID)+3)
	b = append(b, MessageVersion...)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = append(b, deviceID...)
	return append(b, '\n')
}

// MobileProof is HMAC-SHA256 of Message(nonce, deviceID) keyed by the
// managementHint, the proof a phone presents instead of the hint itself.
func MobileProof(hint Hint, nonce, deviceID string) []byte {
	m := hmac.New(sha256.New, []byte(hint))
	m.Write(Message(nonce, deviceID))
	return m.Sum(nil)
}
