package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/scepca/scepca/ca"
)

// A config file is one JSON object whose keys are the flag names of the
// command (`"listen"`, `"public-url"`, `"tls-cert"`, ...) and whose values
// are strings, numbers or booleans, exactly as the flag would take them
// (durations as Go duration strings, "24h"). The mapping is derived from
// the flag set, so every flag, including ones added later, is settable in
// the file and nothing else is. Decoding is strict: unknown keys, repeated
// keys, nested values, null and trailing data are errors.
//
// Precedence, highest first: command-line flag, SCEPCA_<FLAG> environment
// variable, config file, built-in default.

// configFlag names the flag (and SCEPCA_CONFIG) that points at the file.
const configFlag = "config"

// registerConfig adds --config to fs.
func registerConfig(fs *flag.FlagSet) {
	fs.String(configFlag, "", "JSON configuration file whose keys are these flags' names (flags and SCEPCA_* win over it)")
}

// Where a flag's value came from.
const (
	sourceFlag    = "flag"
	sourceEnv     = "env"
	sourceFile    = "file"
	sourceDefault = "default"
)

// parseSources parses args into fs, refuses positional arguments, then fills
// the flags not given from SCEPCA_* and then from the config file (when fs
// has --config and it is set). It returns each flag's source.
func parseSources(fs *flag.FlagSet, args []string, env func(string) string) (map[string]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sources := map[string]string{}
	mark := func(src string) {
		fs.Visit(func(f *flag.Flag) {
			if _, ok := sources[f.Name]; !ok {
				sources[f.Name] = src
			}
		})
	}
	mark(sourceFlag)
	if err := applyEnv(fs, env); err != nil {
		return nil, err
	}
	mark(sourceEnv)
	if f := fs.Lookup(configFlag); f != nil && f.Value.String() != "" {
		if err := applyConfigFile(fs, f.Value.String()); err != nil {
			return nil, err
		}
	}
	mark(sourceFile)
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := sources[f.Name]; !ok {
			sources[f.Name] = sourceDefault
		}
	})
	return sources, nil
}

// applyConfigFile sets every flag of fs that is not set yet from the JSON
// config file at path.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator's --config path
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	values, err := decodeConfig(b, fs)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if set[k] {
			continue
		}
		if err := fs.Set(k, values[k]); err != nil {
			return fmt.Errorf("config %s: %q: invalid value %q: %w", path, k, values[k], err)
		}
	}
	return nil
}

// decodeConfig reads one JSON object of flag names to scalar values,
// strictly, and returns the values as flag strings.
func decodeConfig(b []byte, fs *flag.FlagSet) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("want a JSON object of flag names to values")
	}
	out := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		key, _ := tok.(string)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		if key == configFlag || fs.Lookup(key) == nil {
			return nil, fmt.Errorf("unknown key %q (keys are the flags of scepca %s, without dashes in front)", key, fs.Name())
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		v, err := scalar(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// scalar turns a JSON string, number or boolean into the flag's text.
func scalar(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", errors.New("want a string, number or boolean")
	}
}

// runConfig is `scepca config check`.
func runConfig(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: scepca config check [--config FILE] [serve flags]")
		return errors.New("config: want the subcommand check")
	}
	return configCheck(ctx, args[1:], env, stdout, stderr)
}

// configCheck validates serve's configuration as flags, environment and
// config file give it, without opening the data directory or listening,
// and prints each setting with its source. It returns the first problem.
func configCheck(_ context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	var o serveOptions
	fs := o.flags(stderr)
	sources, err := parseSources(fs, args, env)
	if err != nil {
		return err
	}
	if err := o.check(env); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "configuration OK")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(stdout, "  %-20s %-40q (%s)\n", f.Name, f.Value.String(), sources[f.Name])
	})
	return nil
}

// check validates what serve would refuse at start-up, in the same order,
// except what needs the store: addresses, log level, TLS files, the KEK,
// CA settings and durations.
func (o *serveOptions) check(env func(string) string) error {
	for _, l := range []struct{ name, addr string }{{"--listen", o.listen}, {"--metrics-listen", o.metricsListen}} {
		if l.addr == "" && l.name == "--metrics-listen" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %w", l.name, l.addr, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", l.name, l.addr, port)
		}
	}
	if _, err := newLogger(io.Discard, o.logLevel); err != nil {
		return err
	}
	if _, err := o.serverTLS(slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	if err := o.checkKEK(env); err != nil {
		return err
	}
	publicURL := o.publicURL
	if publicURL == "" {
		publicURL = "http://" + o.listen
	}
	cfg := o.caConfig(publicURL, slog.New(slog.DiscardHandler))
	cfg.Validity, cfg.Jitter = o.validity, o.jitter
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"--intune-timeout", o.intuneTimeout, time.Nanosecond},
		{"--attest-nonce-ttl", o.attest.nonceTTL, time.Nanosecond},
		{"--attest-crl-max-age", o.attest.crlTTL, time.Nanosecond},
		{"--attest-max-unused", o.attest.maxUnused, 0},
		{"--cert-jitter", o.jitter, 0},
		{"--audit-retention", o.audit.retention, 0},
	} {
		if d.v < d.min {
			return fmt.Errorf("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if fi, err := os.Stat(o.data); err == nil && !fi.IsDir() {
		return fmt.Errorf("--data %s is not a directory", o.data)
	}
	return nil
}

// checkKEK loads the key-encryption key as serve would, without generating
// one: --dev may generate it at start-up.
func (o *serveOptions) checkKEK(env func(string) string) error {
	switch {
	case o.kekFile != "":
		_, err := ca.LoadKEKFile(o.kekFile)
		return err
	case env("SCEPCA_KEK") != "":
		_, err := ca.ParseKEK([]byte(env("SCEPCA_KEK")))
		if err != nil {
			return fmt.Errorf("SCEPCA_KEK: %w", err)
		}
		return nil
	case o.dev:
		return nil
	default:
		return errors.New("no key-encryption key: set --kek-file or SCEPCA_KEK, or use --dev to generate one beside the data")
	}
}
