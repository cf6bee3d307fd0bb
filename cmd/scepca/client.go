package main

// The admin client: `scepca <group> <action> [flags] [arguments]` calls the
// admin REST API (docs/api.md) with a bearer token and prints the answer as
// indented JSON (or, with --output table, as a table). Every group shares
// --server, --token-file, --data and --output (clientOptions) and the
// error handling: a problem document's detail, exit status 1.
//
// Adding a group (cas, logs, token; certificates is cli_certificates.go) is one table of
// apiCommand and one line in commands(). For example:
//
//	var certificateCommands = map[string]apiCommand{
//		"revoke": {
//			summary: "revoke a certificate",
//			args:    []string{"serial"},
//			build: func(fs *flag.FlagSet) apiAction {
//				reason := fs.String("reason", "unspecified", "CRL reason")
//				return func(ctx context.Context, c *apiClient, args []string) (any, error) {
//					var out map[string]any
//					_, err := c.call(ctx, http.MethodPost, "/api/v1/certificates/"+url.PathEscape(args[0])+"/revoke",
//						map[string]any{"reason": *reason}, &out)
//					return out, err
//				}
//			},
//		},
//	}
//
// and in commands(): "certificates": {"list, get and revoke certificates",
// apiGroup("certificates", certificateCommands)}. A command without flags
// can use get(pathFormat) or post(pathFormat) instead of writing build.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// apiAction runs one command with its positional arguments and returns
// what to print.
type apiAction func(ctx context.Context, c *apiClient, args []string) (any, error)

// apiCommand is one action of a client group.
type apiCommand struct {
	summary string
	// args names the positional arguments, all required.
	args []string
	// build registers the command's own flags and returns its action.
	build func(fs *flag.FlagSet) apiAction
	// columns are the fields --output table shows for a list.
	columns []string
}

// clientOptions are the flags every client command shares.
type clientOptions struct {
	server    string
	tokenFile string
	data      string
	output    string
}

const defaultServer = "http://127.0.0.1:8080"

func (o *clientOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.server, "server", defaultServer, "base URL of the scepca server (or SCEPCA_SERVER)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the admin token (or SCEPCA_TOKEN_FILE; default <data>/admin-token); SCEPCA_TOKEN, when set, is the token itself")
	fs.StringVar(&o.data, "data", "./data", "data directory whose admin-token is read when no token is given (or SCEPCA_DATA)")
	fs.StringVar(&o.output, "output", "json", "json or table (or SCEPCA_OUTPUT)")
}

// applyEnv fills the shared flags not given from SCEPCA_SERVER,
// SCEPCA_TOKEN_FILE, SCEPCA_DATA and SCEPCA_OUTPUT. A command's own flags
// are not read from the environment.
func (o *clientOptions) applyEnv(fs *flag.FlagSet, env func(string) string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, p := range map[string]*string{"server": &o.server, "token-file": &o.tokenFile, "data": &o.data, "output": &o.output} {
		if v := env("SCEPCA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" && !set[name] {
			*p = v
		}
	}
}

// client checks the options and returns the API client with its token:
// SCEPCA_TOKEN, else the token file.
func (o *clientOptions) client(env func(string) string) (*apiClient, error) {
	if o.output != "json" && o.output != "table" {
		return nil, fmt.Errorf("--output must be json or table, not %q", o.output)
	}
	u, err := url.Parse(strings.TrimRight(o.server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--server must be an http or https base URL such as %s, not %q", defaultServer, o.server)
	}
	token := strings.TrimSpace(env("SCEPCA_TOKEN"))
	if token == "" {
		path := o.tokenFile
		if path == "" {
			path = filepath.Join(o.data, "admin-token")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w (set SCEPCA_TOKEN or --token-file)", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("admin token file %s is empty", path)
		}
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), ""
	return &apiClient{base: u, token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiClient calls the admin API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
	// stderr takes notices beside the output (e.g. that more pages exist).
	stderr io.Writer
}

// apiError is a non-2xx answer: the problem document's detail when there
// is one.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Detail, e.Status)
}

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 16 << 20

// call sends method path (a path with its query, relative to the server)
// with body as JSON when non-nil, decodes a 2xx answer into out when
// non-nil, and returns the answer's headers. A non-2xx answer is an
// *apiError carrying the problem detail.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	u, err := url.Parse(c.base.String() + path)
	if err != nil {
		return nil, fmt.Errorf("bad API path %q: %w", path, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, u.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var p struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		detail := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &p) == nil && (p.Detail != "" || p.Title != "") {
			detail = p.Detail
			if detail == "" {
				detail = p.Title
			}
		}
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		if detail == "" {
			detail = http.StatusText(resp.StatusCode)
		}
		return resp.Header, &apiError{Status: resp.StatusCode, Detail: detail}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, u.Path, err)
		}
	}
	return resp.Header, nil
}

var linkNext = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

// nextLink returns the target of the Link header's rel="next" (RFC 8288)
// as a path and query for call, or "". call prefixes the --server URL, so
// the target is cut to start at /api/: an absolute link (the audit log's,
// built from --public-url) may carry a path prefix of its own.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		if m := linkNext.FindStringSubmatch(v); m != nil {
			if u, err := url.Parse(m[1]); err == nil {
				p := u.RequestURI()
				if i := strings.Index(p, "/api/"); i > 0 {
					p = p[i:]
				}
				return p
			}
		}
	}
	return ""
}

// get is a command without flags that GETs pathFormat with its escaped
// arguments (fmt verbs %s).
func get(pathFormat string) func(*flag.FlagSet) apiAction {
	return simple(http.MethodGet, pathFormat)
}

// post is a command without flags that POSTs to pathFormat.
func post(pathFormat string) func(*flag.FlagSet) apiAction {
	return simple(http.MethodPost, pathFormat)
}

func simple(method, pathFormat string) func(*flag.FlagSet) apiAction {
	return func(*flag.FlagSet) apiAction {
		return func(ctx context.Context, c *apiClient, args []string) (any, error) {
			var out any
			_, err := c.call(ctx, method, escapedPath(pathFormat, args...), nil, &out)
			return out, err
		}
	}
}

// escapedPath fills pathFormat's %s verbs with path-escaped args.
func escapedPath(pathFormat string, args ...string) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = url.PathEscape(a)
	}
	return fmt.Sprintf(pathFormat, esc...)
}

// apiGroup runs `scepca <group> <action> ...` from cmds.
func apiGroup(group string, cmds map[string]apiCommand) func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			groupUsage(stderr, group, cmds)
			if len(args) == 0 {
				return fmt.Errorf("%s: no action given", group)
			}
			return nil
		}
		cmd, ok := cmds[args[0]]
		if !ok {
			groupUsage(stderr, group, cmds)
			return fmt.Errorf("%s: unknown action %q", group, args[0])
		}
		return runAPICommand(ctx, group+" "+args[0], cmd, args[1:], env, stdout, stderr)
	}
}

// apiSingle runs `scepca <name> [flags] [arguments]`: a client command
// without actions (scepca logs).
func apiSingle(name string, cmd apiCommand) func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
		return runAPICommand(ctx, name, cmd, args, env, stdout, stderr)
	}
}

// runAPICommand parses args for cmd (named "group action" in messages),
// calls it and prints its answer.
func runAPICommand(ctx context.Context, name string, cmd apiCommand, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scepca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o clientOptions
	o.register(fs)
	action := cmd.build(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: scepca %s [flags]%s\n\n%s\n\nflags:\n", name, argNames(cmd.args), cmd.summary)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != len(cmd.args) {
		fs.Usage()
		return fmt.Errorf("%s: want%s, got %d argument(s)", name, argNames(cmd.args), len(pos))
	}
	o.applyEnv(fs, env)
	c, err := o.client(env)
	if err != nil {
		return err
	}
	c.stderr = stderr
	out, err := action(ctx, c, pos)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return render(stdout, out, cmd.columns, o.output)
}

func argNames(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(" <" + a + ">")
	}
	return b.String()
}

func groupUsage(w io.Writer, group string, cmds map[string]apiCommand) {
	fmt.Fprintf(w, "usage: scepca %s <action> [flags] [arguments]\n\nactions:\n", group)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n+argNames(cmds[n].args), cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'scepca %s <action> -h' for its flags. All actions take --server (SCEPCA_SERVER, default %s)\nand a token: SCEPCA_TOKEN, or --token-file (SCEPCA_TOKEN_FILE, default <data>/admin-token).\n", group, defaultServer)
}

// parseInterleaved parses flags that may come before or after the
// positional arguments (`get ID --server URL`) and returns the arguments.
// After "--" everything is an argument.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		before := len(args)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" and drops it: what follows is all arguments.
		consumed := before - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// render prints v as indented JSON, or with output "table" as a table of
// columns (a list) or as field/value lines (an object).
func render(w io.Writer, v any, columns []string, output string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if output != "table" {
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	switch g := generic.(type) {
	case []any:
		if len(columns) == 0 {
			return errors.New("--output table is not available for this command")
		}
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(columns, "\t")))
		for _, row := range g {
			m, _ := row.(map[string]any)
			cells := make([]string, len(columns))
			for i, c := range columns {
				cells[i] = cell(m[c])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	case map[string]any:
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(g[k]))
		}
	default:
		fmt.Fprintln(tw, cell(g))
	}
	return tw.Flush()
}

// cell is one table cell: scalars as they read, structures as compact JSON.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case bool, float64:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

// maxInput bounds a file the client sends (a request body, a hint).
const maxInput = 1 << 20

// readAllLimited reads r up to maxInput bytes.
func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("larger than %d bytes", maxInput)
	}
	return b, nil
}
