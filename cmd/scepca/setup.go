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

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store/bolt"
)

// dataOptions are the flags every command that opens the data directory shares.
type dataOptions struct {
	data    string
	kekFile string
	dev     bool
	org     string
	keyType string
}

func (o *dataOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.data, "data", "./data", "data directory (bbolt store, admin token, dev files)")
	fs.StringVar(&o.kekFile, "kek-file", "", "file holding the key-encryption key (32 bytes, base64 or hex); or set SCEPCA_KEK to the key itself")
	fs.BoolVar(&o.dev, "dev", false, "development mode: generate a key-encryption key beside the data and create a default integration")
	fs.StringVar(&o.org, "org", "scepca", `organisation name for "<Org> Root Authority" and "<Org> Intermediate Authority" (first start only)`)
	fs.StringVar(&o.keyType, "key-type", "rsa", "issuing key type on first start: rsa (RSA-2048) or ecdsa (P-256, with a separate RSA RA)")
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
func (o *dataOptions) open(env func(string) string, stderr io.Writer) (*ca.KEK, *bolt.DB, error) {
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
func (o *dataOptions) openData() (*bolt.DB, error) {
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return bolt.Open(o.dbPath())
}

// newLogger returns a JSON logger at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// auditLogger writes audit events of CLI commands (CA creation, root key
// export and removal) as JSON lines to w.
func auditLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil)).With("log", "audit")
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

// initCA opens the CA, creating it on an empty store.
func initCA(ctx context.Context, st ca.Stores, kek *ca.KEK, cfg ca.Config) (*ca.Authority, bool, error) {
	return ca.OpenOrInit(ctx, st, kek, cfg)
}
