package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/scepca/scepca/ca"
)

// runCA handles `scepca ca export-root-key --out FILE` and `scepca ca
// remove-root-key`: together they take the root key offline.
func runCA(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: scepca ca export-root-key --out FILE | remove-root-key")
	}
	sub := args[0]
	fs := flag.NewFlagSet("ca "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dataOptions
	o.register(fs)
	out := fs.String("out", "", "export-root-key: file to write the PEM root key to (created with mode 0600)")
	if err := parseFlags(fs, args[1:], env); err != nil {
		return err
	}
	kek, st, err := o.open(env, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := ca.Open(ctx, st, kek, o.caConfig("", auditLogger(stderr)))
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
	}
	return fmt.Errorf("unknown ca subcommand %q", sub)
}
