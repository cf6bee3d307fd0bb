package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
	"github.com/scepca/scepca/store/etcd"
)

// migrateBatch is how many records one import write carries.
const migrateBatch = 500

// runStore runs `scepca store migrate`: copy every record from one store
// to another (bbolt to etcd when an organisation moves to several
// replicas, or back), then read the destination again and compare record
// counts and checksums bucket by bucket.
func runStore(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	const usageLine = "usage: scepca store migrate --from bolt:PATH|etcd:ENDPOINTS --to bolt:PATH|etcd:ENDPOINTS [--etcd-prefix P] [--etcd-ca F --etcd-cert F --etcd-key F]"
	if len(args) == 0 || args[0] != "migrate" {
		return errors.New(usageLine)
	}
	fs := flag.NewFlagSet("store migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "source store: bolt:PATH (the server using it must be stopped) or etcd:ENDPOINTS")
	to := fs.String("to", "", "destination store: bolt:PATH or etcd:ENDPOINTS (comma-separated client URLs)")
	var eo storeOptions
	fs.StringVar(&eo.prefix, "etcd-prefix", etcd.DefaultPrefix, "key prefix of the deployment in etcd (either side)")
	fs.StringVar(&eo.caFile, "etcd-ca", "", "PEM CA certificate(s) that verify the etcd servers")
	fs.StringVar(&eo.certFile, "etcd-cert", "", "PEM client certificate for etcd")
	fs.StringVar(&eo.keyFile, "etcd-key", "", "PEM private key of --etcd-cert")
	if err := parseFlags(fs, args[1:], env); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return errors.New(usageLine)
	}
	if *from == *to {
		return fmt.Errorf("--from and --to are both %s", *from)
	}
	src, err := openMigrateSide(ctx, *from, eo, false)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := openMigrateSide(ctx, *to, eo, true)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()

	want := newSums()
	var batch []record
	n := 0
	err = src.export(ctx, func(r record) error {
		want.add(r)
		// Export's slices are only valid during the call (bbolt).
		batch = append(batch, record{bucket: r.bucket, key: clone(r.key), value: clone(r.value)})
		n++
		if len(batch) < migrateBatch {
			return nil
		}
		err := dst.importRecords(ctx, batch)
		batch = batch[:0]
		return err
	})
	if err == nil && len(batch) > 0 {
		err = dst.importRecords(ctx, batch)
	}
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("copy: the destination holds another value under a key of the source; migrate into an empty prefix or file: %w", err)
	}
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	got := newSums()
	if err := dst.export(ctx, func(r record) error { got.add(r); return nil }); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	fmt.Fprintf(stdout, "%-14s %8s  %s\n", "bucket", "records", "sha256")
	var diffs []string
	for _, b := range unionKeys(want, got) {
		w, g := want.get(b), got.get(b)
		fmt.Fprintf(stdout, "%-14s %8d  %s\n", b, w.count, w.sum())
		if w.count != g.count || w.sum() != g.sum() {
			diffs = append(diffs, fmt.Sprintf("%s: source %d records sha256 %s, destination %d records sha256 %s", b, w.count, w.sum(), g.count, g.sum()))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("destination differs from source (did it hold other records before?):\n  %s", strings.Join(diffs, "\n  "))
	}
	fmt.Fprintf(stdout, "copied %d records from %s to %s; counts and checksums match\n", n, *from, *to)
	return nil
}

// record is one record in transit, as both backends export it.
type record struct {
	bucket     string
	key, value []byte
}

// migrateSide is one end of a migration.
type migrateSide interface {
	export(ctx context.Context, fn func(record) error) error
	importRecords(ctx context.Context, recs []record) error
	Close() error
}

// openMigrateSide opens bolt:PATH or etcd:ENDPOINTS. A bbolt source must
// exist; a destination file is created.
func openMigrateSide(ctx context.Context, spec string, eo storeOptions, create bool) (migrateSide, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("%q: want bolt:PATH or etcd:ENDPOINTS", spec)
	}
	switch kind {
	case backendBolt:
		if !create {
			if _, err := os.Stat(arg); err != nil {
				return nil, err
			}
		}
		db, err := bolt.Open(arg)
		if err != nil {
			return nil, err
		}
		return boltSide{db}, nil
	case backendEtcd:
		eo.endpoints = arg
		cfg, err := eo.etcdConfig()
		if err != nil {
			return nil, err
		}
		st, err := etcd.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return etcdSide{st}, nil
	}
	return nil, fmt.Errorf("%q: want bolt:PATH or etcd:ENDPOINTS", spec)
}

type boltSide struct{ *bolt.DB }

func (b boltSide) export(ctx context.Context, fn func(record) error) error {
	return b.Export(ctx, func(r bolt.Record) error { return fn(record{r.Bucket, r.Key, r.Value}) })
}

func (b boltSide) importRecords(ctx context.Context, recs []record) error {
	out := make([]bolt.Record, len(recs))
	for i, r := range recs {
		out[i] = bolt.Record{Bucket: r.bucket, Key: r.key, Value: r.value}
	}
	return b.Import(ctx, out)
}

type etcdSide struct{ *etcd.Store }

func (e etcdSide) export(ctx context.Context, fn func(record) error) error {
	return e.Export(ctx, func(r etcd.Record) error { return fn(record{r.Bucket, r.Key, r.Value}) })
}

func (e etcdSide) importRecords(ctx context.Context, recs []record) error {
	out := make([]etcd.Record, len(recs))
	for i, r := range recs {
		out[i] = etcd.Record{Bucket: r.bucket, Key: r.key, Value: r.value}
	}
	return e.Import(ctx, out)
}

// sums are a count and a checksum per bucket: the sum, modulo 2^256, of
// the SHA-256 of each record (its key and value, each after its length
// as a uvarint). The sum does not depend on the order the backends list
// records in, and two sets of distinct records agree only if they are the
// same set (short of a SHA-256 collision).
type sums map[string]*bucketSum

type bucketSum struct {
	count int
	total big.Int
}

var mod256 = new(big.Int).Lsh(big.NewInt(1), 256)

func newSums() sums { return sums{} }

func (s sums) add(r record) {
	b := s.get(r.bucket)
	b.count++
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(r.key)))])
	h.Write(r.key)
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(r.value)))])
	h.Write(r.value)
	b.total.Add(&b.total, new(big.Int).SetBytes(h.Sum(nil)))
	b.total.Mod(&b.total, mod256)
}

func (s sums) get(bucket string) *bucketSum {
	b, ok := s[bucket]
	if !ok {
		b = &bucketSum{}
		s[bucket] = b
	}
	return b
}

func (b *bucketSum) sum() string {
	var out [32]byte
	return hex.EncodeToString(b.total.FillBytes(out[:]))
}

func unionKeys(a, b sums) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
