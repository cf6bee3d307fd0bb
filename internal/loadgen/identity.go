package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/scepca/scepca/internal/scepclient"
)

// Identity is a client key with the self-signed certificate that signs its
// pkiMessages and receives the CertRep envelope (RFC 8894 §2.3). One
// identity may serve many transactions: each Request still has its own
// transactionID and subject.
type Identity struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// forEach runs fn(0..n-1) on every core and joins the errors; it stops
// handing out work when ctx ends and then returns ctx's error.
func forEach(ctx context.Context, n int, fn func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// NewIdentities generates n RSA identities of the given size, in parallel
// on every core. It is slow (tens of milliseconds per 2048-bit key), which
// is why it runs once, before any timed phase.
func NewIdentities(ctx context.Context, n, bits int) ([]Identity, error) {
	if n <= 0 {
		return nil, errors.New("loadgen: need at least one identity")
	}
	if bits < 2048 {
		return nil, fmt.Errorf("loadgen: RSA key size %d below 2048", bits)
	}
	ids := make([]Identity, n)
	err := forEach(ctx, n, func(i int) (err error) {
		ids[i], err = newIdentity(bits, i)
		return err
	})
	if ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: identities: %w", err)
	}
	return ids, nil
}

func newIdentity(bits, i int) (Identity, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Identity{}, err
	}
	cert, err := scepclient.SelfSigned(key, fmt.Sprintf("SCEP SIGNER %d", i))
	if err != nil {
		return Identity{}, err
	}
	return Identity{Key: key, Cert: cert}, nil
}
