package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/scepca/scepca/ca"
)

// caUsage lists the ca subcommands.
const caUsage = "usage: scepca ca export-root-key --out FILE | remove-root-key | rotate [--key-type rsa|ecdsa] [--root-key-file FILE] | activate ID | delete ID [--force]"

// runCA handles `scepca ca export-root-key --out FILE` and `scepca ca
// remove-root-key` (together they take the root key offline), and the
// intermediate's rotation: `scepca ca rotate`, `scepca ca activate ID` and
// `scepca ca delete ID`. They act on the data directory; a server on the
// same store picks rotation steps up within its reload interval
// (ca.DefaultReloadInterval). The embedded store admits one process at a
// time, so with a running bbolt server use the admin API instead.
func runCA(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(caUsage)
	}
	sub, rest := args[0], args[1:]
	var id string
	if sub == "activate" || sub == "delete" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%s needs the certificate authority ID: scepca ca %s ID", sub, sub)
		}
		id, rest = rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("ca "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dataOptions
	o.register(fs)
	out := fs.String("out", "", "export-root-key: file to write the PEM root key to (created with mode 0600)")
	rootKeyFile := fs.String("root-key-file", "", "rotate: the exported root key (PEM), needed once remove-root-key took it out of the store; used once, never stored")
	force := fs.Bool("force", false, "delete: delete a retired intermediate even though certificates it issued are still valid (they stop verifying)")
	if err := parseFlags(fs, rest, env); err != nil {
		return err
	}
	kek, st, err := o.open(env, stderr)
	if err != nil {
		if sub == "rotate" || sub == "activate" || sub == "delete" {
			return fmt.Errorf("%w (if scepca serve is running on this data directory, use the admin API: docs/api.md, \"Rotating the intermediate\")", err)
		}
		return err
	}
	defer st.Close()
	audit, ctx, auditDone, err := cliAudit(ctx, st, stderr)
	if err != nil {
		return err
	}
	defer auditDone()
	a, err := ca.Open(ctx, st, kek, o.caConfig("", audit))
	if err != nil {
		return err
	}
	switch sub {
	case "export-root-key":
		if *out == "" {
			return errors.New("export-root-key needs --out FILE")
		}
		pem, err := a.ExportRootKey(ctx)
		if err != nil {
			return err
		}
		if err := writeSecretFile(*out, string(pem)); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
		fmt.Fprintf(stdout, "root key written to %s; keep it offline, then run 'scepca ca remove-root-key'\n", *out)
		return nil
	case "remove-root-key":
		if err := a.RemoveRootKey(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "root key removed from the store; the root certificate stays, issuance continues from the intermediate")
		return nil
	case "rotate":
		opts := ca.RotateOptions{Actor: "cli"}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "key-type" {
				opts.KeyType = o.keyType
			}
		})
		if *rootKeyFile != "" {
			if opts.RootKeyPEM, err = os.ReadFile(*rootKeyFile); err != nil { //nolint:gosec // G703: the operator's own --root-key-file path
				return fmt.Errorf("--root-key-file: %w", err)
			}
			defer clear(opts.RootKeyPEM)
		}
		rec, err := caLifecycle{a, st}.Rotate(ctx, opts)
		if errors.Is(err, ca.ErrRootKeyRemoved) {
			return errors.New("the root key was removed from the store: pass the exported key with --root-key-file FILE")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "staged the next intermediate %s (%s); GetNextCACert serves it now\nwhen devices have fetched it, run 'scepca ca activate %s'\n", rec.ID, rec.Subject, rec.ID)
		return nil
	case "activate":
		old := a.IntermediateID()
		rec, err := caLifecycle{a, st}.Activate(ctx, id, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "intermediate %s (%s) issues from now on; %s is retired: still trusted, issues nothing\n", rec.ID, rec.Subject, old)
		return nil
	case "delete":
		if err := (caLifecycle{a, st}).DeleteIntermediate(ctx, id, *force, "cli"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "intermediate %s deleted\n", id)
		return nil
	}
	return fmt.Errorf("unknown ca subcommand %q; %s", sub, caUsage)
}
