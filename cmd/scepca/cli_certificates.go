package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// certificateCommands is `scepca certificates`: the certificates API.
var certificateCommands = map[string]apiCommand{
	"list": {
		summary: "list issued certificates, newest first, one page or --all",
		build:   buildListCertificates,
		columns: []string{"serial", "status", "user", "deviceId", "integrationId", "notAfter"},
	},
	"get": {
		summary: "show a certificate with its PEM",
		args:    []string{"serial"},
		build:   get("/api/v1/certificates/%s"),
	},
	"revoke": {
		summary: "revoke a certificate with an RFC 5280 reason (--reason keyCompromise, superseded, …; certificateHold puts it on hold)",
		args:    []string{"serial"},
		build: func(fs *flag.FlagSet) apiAction {
			reason := fs.String("reason", "", "RFC 5280 CRLReason name or code (required): unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise")
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				body := map[string]any{}
				if *reason != "" {
					body["reason"] = *reason
					if n, err := strconv.Atoi(*reason); err == nil {
						body["reason"] = n
					}
				}
				var out any
				_, err := c.call(ctx, http.MethodPost, escapedPath("/api/v1/certificates/%s/revoke", args...), body, &out)
				return out, err
			}
		},
	},
	"hold": {
		summary: "put a certificate on hold (revoke with reason certificateHold)",
		args:    []string{"serial"},
		build: func(*flag.FlagSet) apiAction {
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				var out any
				_, err := c.call(ctx, http.MethodPost, escapedPath("/api/v1/certificates/%s/revoke", args...), map[string]any{"reason": "certificateHold"}, &out)
				return out, err
			}
		},
	},
	"unhold": {
		summary: "lift a hold an administrator placed",
		args:    []string{"serial"},
		build:   post("/api/v1/certificates/%s/unhold"),
	},
}

// buildListCertificates registers list's filters and pagination flags.
func buildListCertificates(fs *flag.FlagSet) apiAction {
	integration := fs.String("integration", "", "integration ID")
	user := fs.String("user", "", "user name")
	device := fs.String("device", "", "device ID")
	status := fs.String("status", "", "ISSUED, REVOKED or ON_HOLD")
	expiring := fs.String("expiring-before", "", "only certificates whose notAfter is before this RFC 3339 time")
	limit := fs.Int("limit", 0, "certificates per page (1-1000; default: the server's, 100)")
	cursor := fs.String("cursor", "", "page to start from, as printed after the previous page")
	all := fs.Bool("all", false, "fetch every page")
	return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
		q := url.Values{}
		for k, v := range map[string]string{"integrationId": *integration, "user": *user, "deviceId": *device, "status": *status, "expiringBefore": *expiring, "cursor": *cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *limit != 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		return fetchPages(ctx, c, "/api/v1/certificates", q, *all, "certificates")
	}
}

// fetchPages GETs path?q and returns the items of its JSON array. With all
// it follows the Link rel="next" headers; without, when there are more, it
// prints the --cursor of the next page on stderr.
func fetchPages(ctx context.Context, c *apiClient, path string, q url.Values, all bool, noun string) ([]any, error) {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	items := []any{}
	for path != "" {
		var page []any
		h, err := c.call(ctx, http.MethodGet, path, nil, &page)
		if err != nil {
			return nil, err
		}
		items = append(items, page...)
		path = nextLink(h)
		if path != "" && !all {
			if u, err := url.Parse(path); err == nil {
				fmt.Fprintf(c.stderr, "more %s: add --cursor %s (or use --all)\n", noun, u.Query().Get("cursor"))
			}
			break
		}
	}
	return items, nil
}
