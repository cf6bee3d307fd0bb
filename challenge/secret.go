package challenge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/scepca/scepca/store"
)

// Alphabet is PrintableString-safe (X.680) and free of the characters
// Windows' SCEP client rejects in a challenge (`_ @ ! # $` and friends), so a
// generated secret works on every client. See PROTOCOLS.md §1.10, §2.5.
const Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// SecretLength is the length of generated static secrets: 32 characters of a
// 62-letter alphabet, about 190 bits.
const SecretLength = 32

// GenerateSecret returns n characters drawn uniformly from Alphabet with a
// CSPRNG.
func GenerateSecret(n int) (Secret, error) {
	if n <= 0 {
		return "", errors.New("challenge: secret length must be positive")
	}
	out := make([]byte, n)
	buf := make([]byte, n+16)
	i := 0
	for i < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("challenge: generate secret: %w", err)
		}
		for _, b := range buf {
			// Rejection sampling keeps the distribution uniform: 248 = 4*62.
			if b >= 248 {
				continue
			}
			out[i] = Alphabet[int(b)%len(Alphabet)]
			i++
			if i == n {
				break
			}
		}
	}
	return Secret(out), nil
}

// IsPrintableString reports whether s uses only X.680 PrintableString
// characters.
func IsPrintableString(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-', c == '.', c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

const hashVersion = 1
const saltLen = 16

// HashSecret returns a salted HMAC-SHA256 of s: version byte, salt, MAC. It
// is only for high-entropy generated secrets, where a fast hash is enough and
// enrollment stays cheap.
func HashSecret(s Secret) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("challenge: hash secret: %w", err)
	}
	return append(append([]byte{hashVersion}, salt...), mac(salt, s)...), nil
}

// CheckSecret reports whether s matches hash. The comparison is
// constant-time in the secret.
func CheckSecret(hash []byte, s Secret) bool {
	if len(hash) != 1+saltLen+sha256.Size || hash[0] != hashVersion {
		return false
	}
	salt := hash[1 : 1+saltLen]
	return subtle.ConstantTimeCompare(mac(salt, s), hash[1+saltLen:]) == 1
}

func mac(salt []byte, s Secret) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// CheckIntegrationSecret reports whether s is integ's secret (the static
// secret, or the dynamic challenge page's password): its current one, or
// the one a reset replaced while the reset's overlap window lasts (before
// PreviousSecretUntil). Both hashes are checked whatever the outcome, so
// the time taken does not tell which one matched; each comparison is
// constant-time in the secret.
func CheckIntegrationSecret(integ *store.Integration, s Secret, now time.Time) bool {
	current := CheckSecret(integ.SecretHash, s)
	previous := len(integ.PreviousSecretHash) > 0 && CheckSecret(integ.PreviousSecretHash, s)
	return current || previous && now.Before(integ.PreviousSecretUntil)
}
