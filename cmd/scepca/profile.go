package main

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // G505: Apple's CAFingerprint is an MD5 or SHA-1 digest; SHA-1 is the stronger of the two it reads
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/store"
)

// runProfile is `scepca profile mobileconfig`.
func runProfile(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "mobileconfig" {
		fmt.Fprintln(stderr, "usage: scepca profile mobileconfig --integration ID --server URL [flags]")
		return errors.New("profile: want the subcommand mobileconfig")
	}
	return runMobileconfig(ctx, args[1:], env, stdout, stderr)
}

type mobileconfigOptions struct {
	integration string
	client      clientOptions
	serverCA    string
	challenge   string
	subject     string
	name        string
	identifier  string
	org         string
	out         string
}

// defaultSubject uses Jamf Pro's payload variables; other MDMs have their
// own (docs/walkthroughs).
const defaultSubject = "CN=$USERNAME managementAttestation $UDID"

func runMobileconfig(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile mobileconfig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o mobileconfigOptions
	fs.StringVar(&o.integration, "integration", "", "ID of the DESKTOP integration (required)")
	fs.StringVar(&o.client.server, "server", defaultServer, "base URL of the running scepca admin API (or SCEPCA_SERVER)")
	fs.StringVar(&o.client.tokenFile, "token-file", "", "file holding the admin token (or SCEPCA_TOKEN_FILE; default <data>/admin-token); SCEPCA_TOKEN, when set, is the token itself")
	fs.StringVar(&o.client.data, "data", "./data", "data directory whose admin-token is read when no token is given (or SCEPCA_DATA)")
	fs.StringVar(&o.serverCA, "server-ca", "", "PEM file of the CA that issued --server's TLS certificate (default: the system roots)")
	fs.StringVar(&o.challenge, "challenge", "", "STATIC integrations: the secret key shown when the integration was created or reset (prefer SCEPCA_CHALLENGE: flags show in ps)")
	fs.StringVar(&o.subject, "subject", defaultSubject, "certificate subject, comma-separated RDNs; MDM variables are kept as they are")
	fs.StringVar(&o.name, "name", "", "SCEP payload Name (sent as GetCACert message; default: the integration's name)")
	fs.StringVar(&o.identifier, "identifier", "", "PayloadIdentifier of the profile (default com.scepca.<integration ID>)")
	fs.StringVar(&o.org, "org", "", "PayloadOrganization shown on the device (optional)")
	fs.StringVar(&o.out, "out", "", "write the profile to this file (default: standard output)")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if o.integration == "" {
		return errors.New("profile mobileconfig: --integration is required")
	}
	subject, err := parseSubject(o.subject)
	if err != nil {
		return err
	}
	o.client.output = "json"
	c, err := o.client.client(env)
	if err != nil {
		return err
	}
	if err := trustServerCA(c, o.serverCA); err != nil {
		return err
	}
	var in admin.Integration
	if _, err := c.call(ctx, http.MethodGet, "/api/v1/device-integrations/"+url.PathEscape(o.integration), nil, &in); err != nil {
		return fmt.Errorf("integration %s: %w", o.integration, err)
	}
	if in.Platform != store.PlatformDesktop || in.SCEPURL == "" {
		return fmt.Errorf("integration %s is %s: only DESKTOP integrations have a SCEP endpoint (mobile ones use a managementHint)", in.ID, in.Platform)
	}
	switch in.ChallengeType {
	case store.ChallengeStatic:
		if o.challenge == "" {
			return fmt.Errorf("integration %s is STATIC: give --challenge (or SCEPCA_CHALLENGE) with the secret key shown when it was created or reset; scepca stores only its hash and cannot put it in the profile", in.ID)
		}
	default:
		if o.challenge != "" {
			return fmt.Errorf("integration %s is %s: the challenge is per device (the UEM fetches or substitutes it), so --challenge does not apply", in.ID, in.ChallengeType)
		}
		fmt.Fprintf(stderr, "note: integration %s is %s, so the profile has no Challenge key: configure the challenge in your UEM (docs/walkthroughs)\n", in.ID, in.ChallengeType)
	}
	inter, der, err := intermediate(ctx, c)
	if err != nil {
		return err
	}
	p := profile{
		integration: in, subject: subject, challenge: o.challenge, name: o.name,
		identifier: o.identifier, org: o.org, intermediate: inter, intermediateDER: der,
	}
	b, err := p.marshal()
	if err != nil {
		return err
	}
	if o.out == "" {
		_, err := stdout.Write(b)
		return err
	}
	mode := os.FileMode(0o644)
	if o.challenge != "" {
		mode = 0o600 // it holds the static secret
	}
	if err := os.WriteFile(o.out, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(o.out, mode); err != nil { // an existing file keeps its mode otherwise
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", o.out)
	return nil
}

// trustServerCA makes c trust the PEM CA certificates in caFile (for an
// https --server with a private CA) instead of the system roots.
func trustServerCA(c *apiClient, caFile string) error {
	if caFile == "" {
		return nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("--server-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("--server-ca %s: no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.http.Transport = tr
	return nil
}

// downloadDER GETs a certificate authority's certificate as DER (the
// admin client's call decodes JSON only).
func downloadDER(ctx context.Context, c *apiClient, id string) ([]byte, error) {
	u := c.base.String() + "/api/v1/certificate-authorities/" + url.PathEscape(id) + "/cert?format=der"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readAllLimited(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("certificate authority %s: %w", id, &apiError{Status: resp.StatusCode, Detail: http.StatusText(resp.StatusCode)})
	}
	return b, nil
}

// intermediate returns the active issuing intermediate (the newest, should
// there be several) and its DER, checked against the listed fingerprint.
func intermediate(ctx context.Context, c *apiClient) (*admin.CertificateAuthority, []byte, error) {
	var cas []admin.CertificateAuthority
	if _, err := c.call(ctx, http.MethodGet, "/api/v1/certificate-authorities", nil, &cas); err != nil {
		return nil, nil, fmt.Errorf("certificate authorities: %w", err)
	}
	var best *admin.CertificateAuthority
	for i := range cas {
		ca := &cas[i]
		if ca.Role == store.RoleIntermediate && ca.Active && (best == nil || ca.NotBefore.After(best.NotBefore)) {
			best = ca
		}
	}
	if best == nil {
		return nil, nil, errors.New("the server lists no active INTERMEDIATE certificate authority")
	}
	der, err := downloadDER(ctx, c, best.ID)
	if err != nil {
		return nil, nil, err
	}
	sum := sha1.Sum(der) //nolint:gosec // G401: a fingerprint, as the API lists it
	if !strings.EqualFold(hex.EncodeToString(sum[:]), best.SHA1) {
		return nil, nil, fmt.Errorf("certificate authority %s: downloaded certificate does not match its listed SHA-1 %s", best.ID, best.SHA1)
	}
	return best, der, nil
}

// parseSubject turns "CN=a,O=b" into Apple's Subject: an array of RDNs,
// each an array of [OID or short name, value] pairs. Values are kept as
// written so MDM variables ($UDID, {{DeviceId}}) survive.
func parseSubject(s string) ([][][2]string, error) {
	var out [][][2]string
	for _, rdn := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(rdn), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--subject %q: want comma-separated TYPE=value pairs such as CN=alice,O=Example", s)
		}
		switch strings.ToUpper(k) {
		case "CN", "C", "O", "OU", "L", "ST", "E", "EMAILADDRESS", "DC", "UID", "SERIALNUMBER":
		default:
			return nil, fmt.Errorf("--subject %q: unknown attribute type %q", s, k)
		}
		out = append(out, [][2]string{{strings.ToUpper(k), v}})
	}
	return out, nil
}

// profile is an Apple configuration profile with the intermediate as a
// certificate payload and a com.apple.security.scep payload, at user level
// so the identity lands in the login keychain (PROTOCOLS.md §1.9).
type profile struct {
	integration     admin.Integration
	subject         [][][2]string
	challenge       string
	name            string
	identifier      string
	org             string
	intermediate    *admin.CertificateAuthority
	intermediateDER []byte
}

func (p *profile) marshal() ([]byte, error) {
	in := p.integration
	id := p.identifier
	if id == "" {
		id = "com.scepca." + in.ID
	}
	name := p.name
	if name == "" {
		name = in.Name
	}
	fp := sha1.Sum(p.intermediateDER) //nolint:gosec // G401: Apple's CAFingerprint (MD5 or SHA-1)
	subject := make(plistArray, 0, len(p.subject))
	for _, rdn := range p.subject {
		set := plistArray{}
		for _, pair := range rdn {
			set = append(set, plistArray{pair[0], pair[1]})
		}
		subject = append(subject, set)
	}
	scep := plistDict{
		{"URL", in.SCEPURL},
		{"Name", name},
		{"Subject", subject},
	}
	if p.challenge != "" {
		scep = append(scep, plistEntry{"Challenge", p.challenge})
	}
	scep = append(scep,
		plistEntry{"Keysize", 2048},
		plistEntry{"Key Type", "RSA"},
		plistEntry{"Key Usage", 1}, // signing only: the key signs attestation nonces
		plistEntry{"KeyIsExtractable", false},
		plistEntry{"AllowAllAppsAccess", true},
		plistEntry{"CAFingerprint", fp[:]},
		plistEntry{"Retries", 3},
		plistEntry{"RetryDelay", 10},
	)
	certPayload := plistDict{
		{"PayloadType", "com.apple.security.pkcs1"},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id + ".intermediate"},
		{"PayloadUUID", nameUUID(in.ID, "intermediate", p.intermediate.SHA256)},
		{"PayloadDisplayName", p.intermediate.Subject},
		{"PayloadCertificateFileName", p.intermediate.ID + ".cer"},
		{"PayloadContent", p.intermediateDER},
	}
	scepPayload := plistDict{
		{"PayloadType", "com.apple.security.scep"},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id + ".scep"},
		{"PayloadUUID", nameUUID(in.ID, "scep", in.SCEPURL)},
		{"PayloadDisplayName", "Management attestation certificate (" + in.Name + ")"},
		{"PayloadContent", scep},
	}
	top := plistDict{
		{"PayloadType", "Configuration"},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id},
		{"PayloadUUID", nameUUID(in.ID, "profile", "")},
		{"PayloadDisplayName", "Management attestation (" + in.Name + ")"},
		{"PayloadDescription", "Enrolls a non-exportable signing certificate from scepca into the login keychain, for device management attestation."},
		{"PayloadScope", "User"},
		{"PayloadContent", plistArray{certPayload, scepPayload}},
	}
	if p.org != "" {
		top = append(top, plistEntry{"PayloadOrganization", p.org})
	}
	return encodePlist(top)
}

// nameUUID is a name-based (version 5 layout) UUID, so the same integration
// and CA give the same payload UUIDs on every run.
func nameUUID(parts ...string) string {
	h := sha1.Sum([]byte("scepca-mobileconfig\x00" + strings.Join(parts, "\x00"))) //nolint:gosec // G401: an identifier, not a security property
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := strings.ToUpper(hex.EncodeToString(b))
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// A minimal XML property list writer: dictionaries keep their key order.
type (
	plistDict  []plistEntry
	plistArray []any
	plistEntry struct {
		key   string
		value any
	}
)

func encodePlist(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	if err := writePlist(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

func writePlist(b *bytes.Buffer, v any, depth int) error {
	indent := strings.Repeat("\t", depth)
	text := func(indent, tag, s string) {
		b.WriteString(indent + "<" + tag + ">")
		_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
		b.WriteString("</" + tag + ">\n")
	}
	switch v := v.(type) {
	case plistDict:
		b.WriteString(indent + "<dict>\n")
		for _, e := range v {
			text(indent+"\t", "key", e.key)
			if err := writePlist(b, e.value, depth+1); err != nil {
				return err
			}
		}
		b.WriteString(indent + "</dict>\n")
	case plistArray:
		b.WriteString(indent + "<array>\n")
		for _, e := range v {
			if err := writePlist(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString(indent + "</array>\n")
	case string:
		text(indent, "string", v)
	case int:
		text(indent, "integer", strconv.Itoa(v))
	case bool:
		if v {
			b.WriteString(indent + "<true/>\n")
		} else {
			b.WriteString(indent + "<false/>\n")
		}
	case []byte:
		text(indent, "data", base64.StdEncoding.EncodeToString(v))
	default:
		return fmt.Errorf("plist: cannot encode %T", v)
	}
	return nil
}
