package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/scepca/scepca/ca"
)

// runInit creates the CA hierarchy in an empty data directory without
// serving; `serve` does the same on first start.
func runInit(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dataOptions
	o.register(fs)
	publicURL := fs.String("public-url", "", "external base URL, for CRL and OCSP URLs in issued certificates")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	kek, st, err := o.open(env, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	audit, ctx, auditDone, err := cliAudit(ctx, st, stderr)
	if err != nil {
		return err
	}
	defer auditDone()
	a, err := ca.Init(ctx, st, kek, o.caConfig(*publicURL, audit))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %q\ncreated %q (id %s)\n", a.Root().Subject.CommonName, a.Intermediate().Subject.CommonName, a.IntermediateID())
	if ra := a.RA(); ra != nil {
		fmt.Fprintf(stdout, "created RA %q\n", ra.Subject.CommonName)
	}
	return nil
}
