package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenCommands is `scepca token`: API tokens (docs/api.md, "API tokens").
// They go through the API, so they work while `serve` holds the bbolt
// file; the first extra token is made with the bootstrap admin token.
var tokenCommands = map[string]apiCommand{
	"create": {
		summary: "create an API token with scope admin or verify; the token is shown once",
		build:   buildCreateToken,
	},
	"list": {
		summary: "list API tokens (never the tokens themselves)",
		build:   get("/api/v1/tokens"),
		columns: []string{"id", "name", "scope", "createdAt", "expiresAt", "expired"},
	},
	"delete": {
		summary: "delete an API token",
		args:    []string{"id"},
		build: func(*flag.FlagSet) apiAction {
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				if _, err := c.call(ctx, http.MethodDelete, escapedPath("/api/v1/tokens/%s", args...), nil, nil); err != nil {
					return nil, err
				}
				fmt.Fprintf(c.stderr, "deleted token %s\n", args[0])
				return nil, nil
			}
		},
	},
}

// buildCreateToken registers token create's flags. With --token-out the
// token goes to that file (mode 0600, not overwritten) instead of standard
// output.
func buildCreateToken(fs *flag.FlagSet) apiAction {
	scope := fs.String("scope", "", "admin (the whole API) or verify (only /api/v1/attestation/*); required")
	name := fs.String("name", "", "a label for the token; required")
	expires := fs.Duration("expires", 0, "validity from now, e.g. 720h (default: until deleted)")
	out := fs.String("token-out", "", "write the token to this new file (mode 0600) instead of printing it")
	return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
		s := strings.ToUpper(*scope)
		if s != "ADMIN" && s != "VERIFY" {
			return nil, fmt.Errorf("--scope must be admin or verify, not %q", *scope)
		}
		if strings.TrimSpace(*name) == "" {
			return nil, errors.New("--name is required")
		}
		if *expires < 0 {
			return nil, fmt.Errorf("--expires %v: must be positive", *expires)
		}
		req := map[string]any{"name": *name, "scope": s}
		if *expires > 0 {
			req["expiresAt"] = time.Now().Add(*expires).UTC().Format(time.RFC3339)
		}
		var created map[string]any
		if _, err := c.call(ctx, http.MethodPost, "/api/v1/tokens", req, &created); err != nil {
			return nil, err
		}
		if *out != "" {
			tok, _ := created["token"].(string)
			if err := writeSecretFile(*out, tok+"\n"); err != nil {
				// The token exists but is lost: say which, so it can be deleted.
				return nil, fmt.Errorf("token %v created but not written: %w (delete it with scepca token delete %v)", created["id"], err, created["id"])
			}
			delete(created, "token")
			fmt.Fprintf(c.stderr, "token written to %s (mode 0600)\n", *out)
		}
		return created, nil
	}
}

// logsCommand is `scepca logs`: the audit log (docs/api.md, "Audit log").
var logsCommand = apiCommand{
	summary: "list audit events, newest first: one page, or every page with --all",
	build:   buildLogs,
	columns: []string{"time", "eventType", "actor", "target", "outcome"},
}

// stringList is a repeatable flag whose values may also be
// comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// sinceTime reads --since/--until: an RFC 3339 time, or a duration meaning
// that long ago ("24h").
func sinceTime(flagName, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Format(time.RFC3339Nano), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("--%s %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (24h)", flagName, v)
}

func buildLogs(fs *flag.FlagSet) apiAction {
	var types stringList
	fs.Var(&types, "type", "event type (certificate.issue) or prefix ending in a dot (certificate.); repeat or comma-separate for several")
	since := fs.String("since", "", "only events at or after this: an RFC 3339 time, or a duration ago (24h)")
	until := fs.String("until", "", "only events before this: an RFC 3339 time, or a duration ago")
	limit := fs.Int("limit", 0, "events per page (1-1000; default: the server's, 100)")
	cursor := fs.String("cursor", "", "page to start from, as printed after the previous page")
	all := fs.Bool("all", false, "fetch every page")
	return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
		now := time.Now()
		q := url.Values{}
		for _, t := range types {
			q.Add("eventType", t)
		}
		for name, v := range map[string]string{"since": *since, "until": *until} {
			t, err := sinceTime(name, v, now)
			if err != nil {
				return nil, err
			}
			if t != "" {
				q.Set(name, t)
			}
		}
		if *limit != 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		if *cursor != "" {
			q.Set("cursor", *cursor)
		}
		path := "/api/v1/logs"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		events := []any{}
		for path != "" {
			var page struct {
				Events []any `json:"events"`
			}
			h, err := c.call(ctx, http.MethodGet, path, nil, &page)
			if err != nil {
				return nil, err
			}
			events = append(events, page.Events...)
			path = nextLink(h)
			if path != "" && !*all {
				if u, err := url.Parse(path); err == nil {
					fmt.Fprintf(c.stderr, "more events: add --cursor %s (or use --all)\n", u.Query().Get("cursor"))
				}
				break
			}
		}
		return events, nil
	}
}
