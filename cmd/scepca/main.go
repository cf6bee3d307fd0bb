// Command scepca is the scepca server and its command-line tools: serve,
// init, ca (root key export and removal, intermediate rotation), attest (a device proving it is
// managed), bench and version. Subcommands only wire packages together and
// print; the logic lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "scepca:", err)
		}
		os.Exit(1)
	}
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":  {"run the SCEP CA and its APIs", runServe},
		"init":   {"create the root and intermediate CA in the data directory", runInit},
		"ca":     {"export or remove the root key; rotate, activate or delete the intermediate", runCA},
		"bench":  {"measure SCEP enrollment throughput on loopback", runBench},
		"attest": {"act as a device: prove management to the verifier, print the device context", runAttest},
		// Admin API clients (client.go).
		"integrations": {"manage device integrations through the admin API", apiGroup("integrations", integrationCommands)},
		"devices":      {"list devices and change their lifecycle through the admin API", apiGroup("devices", deviceCommands)},
		"certificates": {"list, get, revoke, hold and unhold certificates through the admin API", apiGroup("certificates", certificateCommands)},
		"token":        {"create, list and delete API tokens (scope admin or verify)", apiGroup("token", tokenCommands)},
		"logs":         {"list audit events (filter by type and time)", apiSingle("logs", logsCommand)},
		"cas":          {"list certificate authorities and rotate the intermediate through the admin API", apiGroup("cas", caCommands)},
		"store":        {"migrate: copy every record between stores (bolt:PATH, etcd:ENDPOINTS) and verify counts and checksums", runStore},
		"version":      {"print the version", runVersion},
		"config":       {"check serve's configuration (flags, SCEPCA_* and --config file)", runConfig},
		"profile":      {"write an Apple configuration profile (mobileconfig) for a DESKTOP integration", runProfile},
	}
}

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], env, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: scepca <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'scepca <command> -h' for its flags. Every flag can also be set as SCEPCA_<FLAG> (e.g. SCEPCA_PUBLIC_URL), and serve's in a --config file; flags win, then environment, then file.")
}

func runVersion(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, "scepca", version())
	return err
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
			v = "devel-" + s.Value[:12]
		}
	}
	return v
}

// parseFlags parses args into fs, refuses stray positional arguments, and
// fills the flags not given from SCEPCA_* (applyEnv), then from the
// --config file where the command has one (config.go).
func parseFlags(fs *flag.FlagSet, args []string, env func(string) string) error {
	_, err := parseSources(fs, args, env)
	return err
}

// applyEnv sets every flag not given on the command line from
// SCEPCA_<NAME> (dashes become underscores), so flags win over environment.
func applyEnv(fs *flag.FlagSet, env func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := "SCEPCA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}
