package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
	"github.com/scepca/scepca/store/etcd"
)

// dataOptions are the flags every command that opens the data directory shares.
type dataOptions struct {
	data    string
	kekFile string
	dev     bool
	org     string
	keyType string
	backend storeOptions
}

// Store backends (--store).
const (
	backendBolt = "bolt"
	backendEtcd = "etcd"
)

// storeOptions select the store: bbolt in the data directory (one
// process), or etcd (several replicas; docs/operations.md, "Choosing a
// store").
type storeOptions struct {
	kind      string
	endpoints string
	prefix    string
	caFile    string
	certFile  string
	keyFile   string
}

func (o *storeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.kind, "store", backendBolt, "store backend: bolt (<data>/scepca.db, one process) or etcd (several replicas)")
	fs.StringVar(&o.endpoints, "etcd-endpoints", "", "etcd client URLs, comma-separated (--store etcd), e.g. https://10.0.0.1:2379,https://10.0.0.2:2379")
	fs.StringVar(&o.prefix, "etcd-prefix", etcd.DefaultPrefix, "key prefix of this deployment in etcd; deployments sharing a cluster need different ones")
	fs.StringVar(&o.caFile, "etcd-ca", "", "PEM CA certificate(s) that verify the etcd servers (https endpoints; default: the system pool)")
	fs.StringVar(&o.certFile, "etcd-cert", "", "PEM client certificate for etcd's --client-cert-auth")
	fs.StringVar(&o.keyFile, "etcd-key", "", "PEM private key of --etcd-cert")
}

// etcdConfig builds the etcd configuration from the flags.
func (o *storeOptions) etcdConfig() (etcd.Config, error) {
	var eps []string
	for _, e := range strings.Split(o.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return etcd.Config{}, errors.New("--store etcd needs --etcd-endpoints")
	}
	cfg := etcd.Config{Endpoints: eps, Prefix: o.prefix}
	tlsWanted := o.caFile != "" || o.certFile != "" || o.keyFile != ""
	for _, e := range eps {
		if strings.HasPrefix(e, "https://") {
			tlsWanted = true
		}
	}
	if tlsWanted {
		tc, err := etcd.TLSConfig(o.caFile, o.certFile, o.keyFile)
		if err != nil {
			return etcd.Config{}, err
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// open opens the selected store; boltPath is the bbolt file.
func (o *storeOptions) open(ctx context.Context, boltPath string) (dataStore, error) {
	switch o.kind {
	case backendBolt:
		return bolt.Open(boltPath)
	case backendEtcd:
		cfg, err := o.etcdConfig()
		if err != nil {
			return nil, err
		}
		return etcd.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("--store %q: want %s or %s", o.kind, backendBolt, backendEtcd)
}

// where names the store for messages: the data directory, or the etcd
// endpoints and prefix.
func (o *dataOptions) where() string {
	if o.backend.kind == backendEtcd {
		return fmt.Sprintf("etcd %s prefix %s", o.backend.endpoints, o.backend.prefix)
	}
	return o.data
}

// hotBackup is the store's backup for GET /api/v1/backup: bbolt's; nil
// for etcd, which is backed up with an etcd snapshot.
func hotBackup(st dataStore) admin.Backup {
	if b, ok := st.(interface {
		WriteBackup(ctx context.Context, w io.Writer, begin func(size int64)) (int64, error)
	}); ok {
		return b.WriteBackup
	}
	return nil
}

// dataStore is what the commands need of a store: the contract, and the
// readiness probe's durable write.
type dataStore interface {
	store.Store
	CheckWritable(ctx context.Context) error
}

func (o *dataOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.data, "data", "./data", "data directory (bbolt store, admin token, dev files; with --store etcd, the admin token and dev files only)")
	fs.StringVar(&o.kekFile, "kek-file", "", "file holding the key-encryption key (32 bytes, base64 or hex); or set SCEPCA_KEK to the key itself")
	fs.BoolVar(&o.dev, "dev", false, "development mode: generate a key-encryption key beside the data and create a default integration")
	fs.StringVar(&o.org, "org", "scepca", `organisation name for "<Org> Root Authority" and "<Org> Intermediate Authority" (first start only)`)
	fs.StringVar(&o.keyType, "key-type", "rsa", "issuing key type on first start: rsa (RSA-2048) or ecdsa (P-256, with a separate RSA RA)")
	o.backend.register(fs)
}

func (o *dataOptions) dbPath() string { return filepath.Join(o.data, "scepca.db") }

// loadKEK finds the key-encryption key: --kek-file, then SCEPCA_KEK, then
// (only with --dev) <data>/kek, generated on first use with a warning.
func (o *dataOptions) loadKEK(env func(string) string, stderr io.Writer) (*ca.KEK, error) {
	if o.kekFile != "" {
		return ca.LoadKEKFile(o.kekFile)
	}
	if v := env("SCEPCA_KEK"); v != "" {
		return ca.ParseKEK([]byte(v))
	}
	if !o.dev {
		return nil, errors.New("no key-encryption key: set --kek-file or SCEPCA_KEK, or use --dev to generate one beside the data")
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(o.data, "kek")
	kek, err := ca.LoadKEKFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "WARNING: --dev: generated a key-encryption key at %s, beside the data it protects; production needs --kek-file or SCEPCA_KEK kept elsewhere\n", path)
		return ca.GenerateKEKFile(path)
	}
	return kek, err
}

// caConfig builds the CA configuration from the flags.
func (o *dataOptions) caConfig(publicURL string, log *slog.Logger) ca.Config {
	return ca.Config{Org: o.org, KeyType: o.keyType, PublicURL: publicURL, Logger: log}
}

// open loads the key-encryption key and opens the store: what every command
// working on the data directory starts with. The caller closes the store.
func (o *dataOptions) open(env func(string) string, stderr io.Writer) (*ca.KEK, dataStore, error) {
	kek, err := o.loadKEK(env, stderr)
	if err != nil {
		return nil, nil, err
	}
	st, err := o.openData()
	if err != nil {
		return nil, nil, err
	}
	return kek, st, nil
}

// openData creates the data directory (0700) and opens the store.
func (o *dataOptions) openData() (dataStore, error) {
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return o.backend.open(context.Background(), o.dbPath())
}

// newLogger returns a JSON logger at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// cliAudit is the audit logger of a command that changes the data
// directory itself (init; ca export-root-key, remove-root-key, rotate,
// activate, delete): JSON lines on w, and events in st with actor "cli"
// in the returned context, so that GET /api/v1/logs shows these offline
// changes beside the API's. done stores what is queued; call it before the
// store closes.
func cliAudit(ctx context.Context, st store.AuditStore, w io.Writer) (logger *slog.Logger, actx context.Context, done func(), err error) {
	h, err := auditlog.New(auditlog.Config{
		Sink:   eventSink{st},
		Next:   slog.New(slog.NewJSONHandler(w, nil)).With("log", "audit").Handler(),
		Logger: slog.New(slog.NewJSONHandler(w, nil)),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.Run(runCtx) })
	return slog.New(h), auditlog.WithActor(ctx, "cli"), func() { cancel(); wg.Wait() }, nil
}

// randomToken returns a 256-bit random token, base64url.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeSecretFile writes s to path with mode 0600, refusing to overwrite.
func writeSecretFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G703: the operator's --out path or a file in the data directory
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// storeLock is the cluster-wide lock of a store that several processes
// share (store/etcd); a bbolt store has none (its file lock already admits
// one process).
type storeLock interface {
	Lock(ctx context.Context, name string) (func(context.Context) error, error)
}

// withStoreLock runs fn holding st's lock name, if st has one.
func withStoreLock[T any](ctx context.Context, st any, name string, fn func() (T, error)) (out T, err error) {
	l, ok := st.(storeLock)
	if !ok {
		return fn()
	}
	unlock, err := l.Lock(ctx, name)
	if err != nil {
		return out, err
	}
	defer func() {
		if uerr := unlock(context.WithoutCancel(ctx)); err == nil && uerr != nil {
			err = uerr
		}
	}()
	return fn()
}

// caLifecycle is the CA's rotation steps (admin.CALifecycle), each under
// the lock of the store db (the opened store itself, not a wrapper):
// ca.Authority serialises them within its process and rereads the CA
// records first, so under a lock that all replicas take, two replicas
// cannot both stage a successor or activate two.
type caLifecycle struct {
	*ca.Authority
	db any
}

func (c caLifecycle) Rotate(ctx context.Context, opts ca.RotateOptions) (*store.CA, error) {
	return withStoreLock(ctx, c.db, "ca-lifecycle", func() (*store.CA, error) { return c.Authority.Rotate(ctx, opts) })
}

func (c caLifecycle) Activate(ctx context.Context, id, actor string) (*store.CA, error) {
	return withStoreLock(ctx, c.db, "ca-lifecycle", func() (*store.CA, error) { return c.Authority.Activate(ctx, id, actor) })
}

func (c caLifecycle) DeleteIntermediate(ctx context.Context, id string, force bool, actor string) error {
	_, err := withStoreLock(ctx, c.db, "ca-lifecycle", func() (struct{}, error) {
		return struct{}{}, c.Authority.DeleteIntermediate(ctx, id, force, actor)
	})
	return err
}

// initCA opens the CA in st, creating it on an empty store. On a store db
// that several replicas share (etcd; db is the opened store, st may wrap
// it) it holds the store's cluster-wide lock meanwhile: replicas starting
// together on an empty store would otherwise each find no CA and each
// create one.
func initCA(ctx context.Context, st ca.Stores, db any, kek *ca.KEK, cfg ca.Config) (*ca.Authority, bool, error) {
	type opened struct {
		a       *ca.Authority
		created bool
	}
	o, err := withStoreLock(ctx, db, "ca-init", func() (opened, error) {
		a, created, err := ca.OpenOrInit(ctx, st, kek, cfg)
		return opened{a, created}, err
	})
	return o.a, o.created, err
}
