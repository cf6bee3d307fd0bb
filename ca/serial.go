package ca

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// serialLen is the number of random bytes in a serial: 16 bytes with the
// top bit cleared give 127 bits of entropy, well over the 64 bits of the
// CA/Browser Forum rule, and never more than the 20 octets of RFC 5280,
// Section 4.1.2.2.
const serialLen = 16

// newSerial returns a random positive serial of at most serialLen bytes.
func newSerial() (*big.Int, error) {
	b := make([]byte, serialLen)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("ca: serial: %w", err)
		}
		b[0] &= 0x7f // positive, and DER needs no leading zero byte
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// SerialString formats a serial as the canonical store key: uppercase
// hexadecimal without leading zeros. A nil serial gives "".
func SerialString(n *big.Int) string {
	if n == nil {
		return ""
	}
	return strings.ToUpper(n.Text(16))
}

// ParseSerial parses a hexadecimal serial (either case, leading zeros and
// colons allowed, as tools print them) into a positive integer of at most
// 20 octets. SerialString(ParseSerial(s)) is the canonical form of s.
func ParseSerial(s string) (*big.Int, error) {
	h := strings.ReplaceAll(s, ":", "")
	if h == "" || len(h) > 64 {
		return nil, errors.New("ca: serial: want 1 to 40 significant hexadecimal digits")
	}
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || strings.ContainsAny(h, "+-xX_") {
		return nil, errors.New("ca: serial: not hexadecimal")
	}
	if n.Sign() <= 0 || n.BitLen() > 20*8 {
		return nil, errors.New("ca: serial: want a positive number of at most 20 octets")
	}
	return n, nil
}
