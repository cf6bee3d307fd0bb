package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
)

// caCommands is `scepca cas`: the certificate authorities through the admin
// API, including the rotation of the intermediate while the server runs
// (docs/api.md, "Rotating the intermediate"). `scepca ca` takes the same
// steps on the data directory; both end in ca.Authority.
var caCommands = map[string]apiCommand{
	"list": {
		summary: "list the CA certificates with their role and rotation state",
		build:   get("/api/v1/certificate-authorities"),
		columns: []string{"id", "role", "state", "active", "subject", "notAfter", "keyOnline"},
	},
	"rotate": {
		summary: "stage a successor of the issuing intermediate (NEXT); GetNextCACert serves it",
		build: func(fs *flag.FlagSet) apiAction {
			keyType := fs.String("key-type", "", "rsa or ecdsa; default the current intermediate's")
			rootKeyFile := fs.String("root-key-file", "", "the exported root key (PEM), needed once it was removed from the store; sent for this signature only")
			return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
				body := map[string]string{}
				if *keyType != "" {
					body["keyType"] = *keyType
				}
				if *rootKeyFile != "" {
					b, err := os.ReadFile(*rootKeyFile)
					if err != nil {
						return nil, fmt.Errorf("--root-key-file: %w", err)
					}
					body["rootKey"] = string(b)
				}
				var out any
				_, err := c.call(ctx, http.MethodPost, "/api/v1/certificate-authorities/rotate", body, &out)
				return out, err
			}
		},
	},
	"activate": {
		summary: "make the staged successor the issuing CA; the previous one is retired (still trusted)",
		args:    []string{"id"},
		build:   post("/api/v1/certificate-authorities/%s/lifecycle/activate"),
	},
	"delete": {
		summary: "delete an uploaded intermediate, or one of ours that is staged or retired",
		args:    []string{"id"},
		build: func(fs *flag.FlagSet) apiAction {
			force := fs.Bool("force", false, "delete a retired intermediate even though certificates it issued are still valid (they stop verifying)")
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				path := escapedPath("/api/v1/certificate-authorities/%s", args...)
				if *force {
					path += "?force=true"
				}
				if _, err := c.call(ctx, http.MethodDelete, path, nil, nil); err != nil {
					return nil, err
				}
				return map[string]any{"id": args[0], "deleted": true}, nil
			}
		},
	},
}
