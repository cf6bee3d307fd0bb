package loadgen

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Bound is the CPU bound on enrollments (DESIGN.md §5): one enrollment
// costs the server three RSA private-key operations, and a server with
// Cores cores can do no more than Cores / PerEnrollment enrollments a
// second however well the rest is written. Each cost is single-core,
// measured in a tight loop on an idle process.
type Bound struct {
	KeyBits int `json:"keyBits"`
	// Cores is GOMAXPROCS of the measuring process.
	Cores int `json:"cores"`
	// Decrypt is RSA PKCS #1 v1.5 decryption of the envelope's content key
	// (key transport rsaEncryption).
	Decrypt time.Duration `json:"decryptNs"`
	// SignCertificate and SignCertRep are RSA PKCS #1 v1.5 signatures over
	// a SHA-256 digest: the issued certificate and the CertRep's signerInfo.
	// It is the same operation, timed twice.
	SignCertificate time.Duration `json:"signCertificateNs"`
	SignCertRep     time.Duration `json:"signCertRepNs"`
	// AllCores is the three operations run in a loop on every core at once,
	// in enrollments per second: what the cores deliver together, which on
	// a virtual machine may be less than Cores times one core.
	AllCores float64 `json:"allCoresPerSec"`
}

// PerEnrollment is the single-core private-key time of one enrollment.
func (b Bound) PerEnrollment() time.Duration { return b.Decrypt + b.SignCertificate + b.SignCertRep }

// Rate is the bound in enrollments per second on Cores cores.
func (b Bound) Rate() float64 {
	if b.PerEnrollment() <= 0 {
		return 0
	}
	return float64(b.Cores) / b.PerEnrollment().Seconds()
}

// MeasureBound generates an RSA key of bits and times each private-key
// operation of an enrollment in a tight loop for about each.
func MeasureBound(ctx context.Context, bits int, each time.Duration) (Bound, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Bound{}, err
	}
	// The envelope's content key: 16 bytes for AES-128 (DefaultParams).
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &key.PublicKey, make([]byte, 16)) //nolint:staticcheck // SA1019: the rsaEncryption key transport SCEP clients send is what the bound times
	if err != nil {
		return Bound{}, err
	}
	digest := sha256.Sum256([]byte("to be signed"))
	decrypt := func() error {
		// As internal/cms does it: implicit rejection with the expected length.
		//nolint:staticcheck // SA1019: rsaEncryption key transport is what SCEP clients send.
		_, err := key.Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16})
		return err
	}
	sign := func() error {
		_, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		return err
	}
	b := Bound{KeyBits: bits, Cores: runtime.GOMAXPROCS(0)}
	for _, m := range []struct {
		d  *time.Duration
		op func() error
	}{{&b.Decrypt, decrypt}, {&b.SignCertificate, sign}, {&b.SignCertRep, sign}} {
		if *m.d, err = timeOp(ctx, each, m.op); err != nil {
			return Bound{}, err
		}
	}
	enrollment := func() error {
		return errors.Join(decrypt(), sign(), sign())
	}
	if b.AllCores, err = allCores(ctx, b.Cores, each, enrollment); err != nil {
		return Bound{}, err
	}
	return b, nil
}

// allCores runs op on n goroutines at once for about d and returns the
// calls per second of all of them together.
func allCores(ctx context.Context, n int, d time.Duration, op func() error) (float64, error) {
	var (
		wg    sync.WaitGroup
		calls atomic.Int64
		errs  = make([]error, n)
	)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			// At least one call per core, even when the goroutine starts
			// after d has passed (a busy machine, a tiny d in tests).
			for first := true; first || (time.Since(start) < d && ctx.Err() == nil); first = false {
				if errs[i] = op(); errs[i] != nil {
					return
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return 0, err
	}
	return float64(calls.Load()) / elapsed.Seconds(), nil
}

// timeOp runs op repeatedly for at least d (and at least 3 times) and
// returns the mean time per call.
func timeOp(ctx context.Context, d time.Duration, op func() error) (time.Duration, error) {
	if err := op(); err != nil { // warm up
		return 0, err
	}
	start := time.Now()
	n := 0
	for n < 3 || time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := op(); err != nil {
			return 0, err
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}

// MeasureDurableWrite times one durable write as scepca's embedded store
// makes it: a bbolt Update (fsync'd commit) putting a 1.5 KiB value, about
// a certificate record, under a fresh key in a new file in dir, repeated
// for about d. Commits are serialized by bbolt, so this is also the least
// time between two of them.
func MeasureDurableWrite(ctx context.Context, dir string, d time.Duration) (time.Duration, error) {
	tmp, err := os.MkdirTemp(dir, "durable-write-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	db, err := bbolt.Open(filepath.Join(tmp, "bench.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("loadgen: durable write: %w", err)
	}
	defer db.Close()
	bucket := []byte("b")
	value := make([]byte, 1536)
	var n uint64
	per, err := timeOp(ctx, d, func() error {
		n++
		return db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put(binary.BigEndian.AppendUint64(nil, n), value)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("loadgen: durable write in %s: %w", dir, err)
	}
	return per, nil
}
