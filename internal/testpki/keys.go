package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"

	"github.com/scepca/scepca/internal/ber"
)

type rsaSlot struct{ bits, index int }

type rsaEntry struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

// rsaKeys caches RSA keys by size and index for the whole test binary: generating
// a 2048-bit key takes tens to hundreds of milliseconds.
var rsaKeys sync.Map // rsaSlot → *rsaEntry

// Indices reserved for the CA helper, so its keys never equal a test's own.
const (
	rootKeyIndex         = -1
	intermediateKeyIndex = -2
)

// NewRSAKey returns an RSA private key of the given size. It is RSAKeyN(tb, bits, 0):
// every caller asking for the same size gets the same key, so tests must not treat
// it as unique to them; use RSAKeyN for several distinct keys.
func NewRSAKey(tb testing.TB, bits int) *rsa.PrivateKey {
	tb.Helper()
	return RSAKeyN(tb, bits, 0)
}

// RSAKeyN returns the n-th cached RSA key of the given size (n ≥ 0), generating it
// on first use. Different n give different keys; the same (bits, n) always gives the
// same key.
func RSAKeyN(tb testing.TB, bits, n int) *rsa.PrivateKey {
	tb.Helper()
	if n < 0 {
		tb.Fatalf("testpki: RSAKeyN(%d, %d): index must not be negative", bits, n)
	}
	return rsaKey(tb, bits, n)
}

func rsaKey(tb testing.TB, bits, n int) *rsa.PrivateKey {
	tb.Helper()
	v, _ := rsaKeys.LoadOrStore(rsaSlot{bits, n}, new(rsaEntry))
	e := v.(*rsaEntry)
	e.once.Do(func() { e.key, e.err = rsa.GenerateKey(rand.Reader, bits) })
	if e.err != nil {
		tb.Fatalf("testpki: generate %d-bit RSA key: %v", bits, e.err)
	}
	return e.key
}

// NewECKey returns a fresh ECDSA key on curve (P-256 when nil). EC key generation
// is fast, so nothing is cached.
func NewECKey(tb testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	tb.Helper()
	if curve == nil {
		curve = elliptic.P256()
	}
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		tb.Fatalf("testpki: generate %s key: %v", curve.Params().Name, err)
	}
	return key
}

// Indefinite re-encodes a DER message (a pkiMessage, an envelope, a certificate)
// with indefinite lengths for every constructed element, the BER that Apple's SCEP
// client and `openssl cms -stream` send (PROTOCOLS.md §5 item 7).
func Indefinite(tb testing.TB, der []byte) []byte {
	tb.Helper()
	b, err := ber.ToIndefinite(der)
	if err != nil {
		tb.Fatalf("testpki: re-encode as indefinite-length BER: %v", err)
	}
	return b
}
