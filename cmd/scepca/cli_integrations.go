package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// integrationCommands is `scepca integrations`: the device-integrations API.
var integrationCommands = map[string]apiCommand{
	"list": {
		summary: "list the device integrations (never their secrets)",
		build:   get("/api/v1/device-integrations"),
		columns: []string{"id", "name", "platform", "challengeType", "enabled", "scepUrl"},
	},
	"get": {
		summary: "show one device integration",
		args:    []string{"id"},
		build:   get("/api/v1/device-integrations/%s"),
	},
	"create": {
		summary: "create a device integration; prints its secret, the only time it is shown",
		build:   buildCreateIntegration,
	},
	"reset-secret": {
		summary: "replace an integration's secret; prints the new one, the only time it is shown",
		args:    []string{"id"},
		build: func(fs *flag.FlagSet) apiAction {
			overlap := fs.Duration("overlap", 0, "keep the old secret working this long (at most 168h) while UEM profiles are updated; 0 ends it at once")
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				if *overlap < 0 || *overlap%time.Second != 0 {
					return nil, fmt.Errorf("--overlap must be a non-negative whole number of seconds, not %s", *overlap)
				}
				var body any
				if *overlap > 0 {
					body = map[string]int64{"overlapSeconds": int64(*overlap / time.Second)}
				}
				var out any
				_, err := c.call(ctx, http.MethodPost, escapedPath("/api/v1/device-integrations/%s/lifecycle/reset-secret", args...), body, &out)
				return out, err
			}
		},
	},
	"enable": {
		summary: "enable an integration: enrollments and proofs are accepted again",
		args:    []string{"id"},
		build:   post("/api/v1/device-integrations/%s/lifecycle/enable"),
	},
	"disable": {
		summary: "disable an integration: enrollments and proofs are refused; certificates stay valid",
		args:    []string{"id"},
		build:   post("/api/v1/device-integrations/%s/lifecycle/disable"),
	},
	"delete": {
		summary: "delete an integration; its certificates stay valid unless --revoke-certificates",
		args:    []string{"id"},
		build: func(fs *flag.FlagSet) apiAction {
			revoke := fs.Bool("revoke-certificates", false, "also revoke every certificate the integration issued (reason cessationOfOperation)")
			return func(ctx context.Context, c *apiClient, args []string) (any, error) {
				path := escapedPath("/api/v1/device-integrations/%s", args...)
				if *revoke {
					path += "?revokeCertificates=true"
				}
				var out any
				_, err := c.call(ctx, http.MethodDelete, path, nil, &out)
				return out, err
			}
		},
	},
}

// createField maps a create flag to its JSON field in the request.
type createField struct {
	flag, field, usage string
	kind               byte // 's' string, 'b' bool, 'i' int
}

var createFields = []createField{
	{"name", "name", "display name (required)", 's'},
	{"platform", "platform", "DESKTOP, IOS or ANDROID (required)", 's'},
	{"challenge-type", "challengeType", "DESKTOP: STATIC, DYNAMIC or INTUNE", 's'},
	{"ca-chain", "caChain", "DESKTOP: GetCACert answer, issuer or issuerAndChain", 's'},
	{"renewal", "renewal", "DESKTOP: accept RenewalReq signed by a certificate of this integration", 'b'},
	{"min-cipher", "minCipher", "DESKTOP: weakest content encryption accepted: des, 3des or aes", 's'},
	{"validity-days", "validityDays", "DESKTOP: certificate validity in days (default: the server's)", 'i'},
	{"require-hardware-key", "requireHardwareKey", "DESKTOP: the verifier requires TPM key evidence", 'b'},
	{"challenge-ttl-minutes", "challengeTtlMinutes", "DYNAMIC: challenge lifetime in minutes (default 60)", 'i'},
	{"max-outstanding", "maxOutstanding", "DYNAMIC: bound on unused challenges (default 1000)", 'i'},
	{"ndes-encoding", "ndesEncoding", "DYNAMIC: serve the challenge page as NDES does (UTF-16LE)", 'b'},
	{"allow-plain-hint", "allowPlainHint", "IOS, ANDROID: also accept the managementHint itself instead of its HMAC", 'b'},
}

// buildCreateIntegration registers create's flags. Only the flags given
// are sent, so the server's defaults and checks apply; --request-file
// supplies a whole JSON request (e.g. with "intune" settings, whose client
// secret does not belong on a command line), which the flags given
// override. A supplied managementHint is read from --management-hint-file.
func buildCreateIntegration(fs *flag.FlagSet) apiAction {
	strs := map[string]*string{}
	bools := map[string]*bool{}
	ints := map[string]*int{}
	for _, f := range createFields {
		switch f.kind {
		case 's':
			strs[f.flag] = fs.String(f.flag, "", f.usage)
		case 'b':
			bools[f.flag] = fs.Bool(f.flag, false, f.usage)
		case 'i':
			ints[f.flag] = fs.Int(f.flag, 0, f.usage)
		}
	}
	requestFile := fs.String("request-file", "", `JSON request body to start from ("-" for standard input), e.g. for INTUNE settings`)
	hintFile := fs.String("management-hint-file", "", "IOS, ANDROID: file holding the managementHint to use (default: generated)")
	return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
		req := map[string]any{}
		if *requestFile != "" {
			b, err := readInput(*requestFile)
			if err != nil {
				return nil, fmt.Errorf("--request-file: %w", err)
			}
			if err := json.Unmarshal(b, &req); err != nil {
				return nil, fmt.Errorf("--request-file: not a JSON object: %w", err)
			}
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, f := range createFields {
			if !set[f.flag] {
				continue
			}
			switch f.kind {
			case 's':
				req[f.field] = *strs[f.flag]
			case 'b':
				req[f.field] = *bools[f.flag]
			case 'i':
				req[f.field] = *ints[f.flag]
			}
		}
		if *hintFile != "" {
			b, err := readInput(*hintFile)
			if err != nil {
				return nil, fmt.Errorf("--management-hint-file: %w", err)
			}
			req["managementHint"] = strings.TrimSpace(string(b))
		}
		var out any
		_, err := c.call(ctx, http.MethodPost, "/api/v1/device-integrations", req, &out)
		return out, err
	}
}

// readInput reads a file, or standard input for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return readAllLimited(os.Stdin)
	}
	f, err := os.Open(path) //nolint:gosec // G304: a file the operator names
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f)
}
