package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/attest/tpm"
	"github.com/scepca/scepca/internal/scepclient"
)

// errNotManaged is returned (exit 1) when the verifier answers that the
// device is not managed; the device context has been printed.
var errNotManaged = errors.New("device not managed")

// runAttest acts as a device against the verifier: `scepca attest desktop`
// signs a fresh nonce with a certificate's key, `scepca attest mobile`
// proves the managementHint. It prints the device context as JSON and
// exits 0 exactly when the device is managed.
func runAttest(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: scepca attest desktop|mobile|tpm-key [flags]\n\n"+
			"  desktop  sign a nonce with a certificate's key (as a Mac or PC would); --tpm adds TPM key evidence\n"+
			"  mobile   prove a mobile integration's managementHint (as a phone would)\n"+
			"  tpm-key  create a signing key in a TPM and a CSR for it, for SCEP enrollment\n\n"+
			"Prints the device context as JSON; exits 0 exactly when the device is managed.\n"+
			"Run 'scepca attest desktop -h' or 'scepca attest mobile -h' for the flags.")
	}
	if len(args) == 0 {
		usage()
		return errors.New("attest: desktop or mobile?")
	}
	switch args[0] {
	case "desktop":
		return runAttestDesktop(ctx, args[1:], env, stdout, stderr)
	case "mobile":
		return runAttestMobile(ctx, args[1:], env, stdout, stderr)
	case "tpm-key":
		return runAttestTPMKey(args[1:], env, stdout, stderr)
	case "-h", "--help", "help":
		usage()
		return flag.ErrHelp
	}
	usage()
	return fmt.Errorf("attest: unknown mode %q, want desktop or mobile", args[0])
}

// attestCommon are the flags both modes share.
type attestCommon struct {
	server, tokenFile, deviceID, platform string
	timeout                               time.Duration
}

func (o *attestCommon) register(fs *flag.FlagSet, platform string) {
	fs.StringVar(&o.server, "server", "", "base URL of the scepca server, e.g. https://scepca.example.com (required)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token (required)")
	fs.StringVar(&o.deviceID, "device-id", "", "the device ID to prove (required)")
	fs.StringVar(&o.platform, "platform", platform, "platform of the proof")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound on the whole exchange")
}

func (o *attestCommon) client() (*client.Client, error) {
	switch {
	case o.server == "":
		return nil, errors.New("--server is required")
	case o.tokenFile == "":
		return nil, errors.New("--token-file is required")
	case o.deviceID == "":
		return nil, errors.New("--device-id is required")
	}
	tok, err := readTrimmed(o.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	if tok == "" {
		return nil, fmt.Errorf("--token-file %s is empty", o.tokenFile)
	}
	return &client.Client{URL: o.server, Token: tok, HTTP: &http.Client{Timeout: o.timeout}}, nil
}

func parseAttestFlags(fs *flag.FlagSet, args []string, env func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return applyEnv(fs, env)
}

func runAttestDesktop(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attest desktop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o attestCommon
	o.register(fs, attest.PlatformMacOS)
	certFile := fs.String("cert", "", "the device's certificate, PEM (required)")
	keyFile := fs.String("key", "", "its private key, PEM: PKCS #1, PKCS #8 or SEC 1; with --tpm, the TPM key file of 'scepca attest tpm-key' (required)")
	alg := fs.String("algorithm", "", "RSA_PKCS1_SHA256, RSA_PSS_SHA256 or ECDSA_SHA256 (default: by key type)")
	tpmPath := fs.String("tpm", "", "a TPM 2.0 (device path such as /dev/tpmrm0, or a swtpm socket) holding --key: sign in the TPM and send TPM key evidence")
	akFile := fs.String("ak", "", "with --tpm: the attestation key file, created in the TPM when absent (default: --key with .ak appended)")
	if err := parseAttestFlags(fs, args, env); err != nil {
		return err
	}
	if *certFile == "" || *keyFile == "" {
		return errors.New("--cert and --key are required")
	}
	if *akFile != "" && *tpmPath == "" {
		return errors.New("--ak needs --tpm")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	cert, err := readCertPEM(*certFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if *tpmPath != "" {
		if *akFile == "" {
			*akFile = *keyFile + ".ak"
		}
		dc, err := attestTPM(ctx, c, *tpmPath, *keyFile, *akFile, cert, o, *alg)
		if err != nil {
			return err
		}
		return printContext(stdout, dc)
	}
	key, err := readKeyPEM(*keyFile)
	if err != nil {
		return err
	}
	dc, err := c.AttestDesktop(ctx, key, cert, o.deviceID, o.platform, *alg)
	if err != nil {
		return err
	}
	return printContext(stdout, dc)
}

// attestTPM signs the proof with a TPM key and has the TPM certify that
// key, with the AK of akFile (created when absent), over the nonce.
func attestTPM(ctx context.Context, c *client.Client, tpmPath, keyFile, akFile string, cert *x509.Certificate, o attestCommon, alg string) (*attest.DeviceContext, error) {
	d, err := tpm.Open(tpmPath)
	if err != nil {
		return nil, fmt.Errorf("--tpm: %w", err)
	}
	defer func() { _ = d.Close() }()
	key, err := readTPMKey(keyFile, "--key")
	if err != nil {
		return nil, err
	}
	ak, err := readTPMKey(akFile, "--ak")
	if errors.Is(err, os.ErrNotExist) {
		if ak, err = d.CreateKey(tpm.AKTemplate()); err == nil {
			err = writeNewFile(akFile, tpm.MarshalKey(ak))
		}
	}
	if err != nil {
		return nil, err
	}
	signer, err := d.Signer(key)
	if err != nil {
		return nil, err
	}
	n, err := c.Nonce(ctx)
	if err != nil {
		return nil, err
	}
	req, err := client.SignDesktop(signer, cert, n.Nonce, o.deviceID, o.platform, alg)
	if err != nil {
		return nil, err
	}
	ev, err := d.Certify(ak, key, tpm.ExtraData(attest.Message(n.Nonce, o.deviceID)))
	if err != nil {
		return nil, err
	}
	req.TPM = attest.EncodeTPMEvidence(ev)
	return c.Verify(ctx, req)
}

// runAttestTPMKey creates a signing key in a TPM, writes its blobs and a
// CSR for it, signed in the TPM, for SCEP enrollment.
func runAttestTPMKey(args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attest tpm-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tpmPath := fs.String("tpm", "", "the TPM 2.0: a device path such as /dev/tpmrm0, or a swtpm socket (required)")
	out := fs.String("out", "", "file to write the key's blobs to; must not exist (required)")
	csrFile := fs.String("csr", "", "file to write a PEM CSR for the key to (optional)")
	cn := fs.String("cn", "", "the CSR's subject common name")
	challengeFile := fs.String("challenge-file", "", "file holding the SCEP challenge to put in the CSR's challengePassword")
	if err := parseAttestFlags(fs, args, env); err != nil {
		return err
	}
	if *tpmPath == "" || *out == "" {
		return errors.New("--tpm and --out are required")
	}
	challenge := ""
	if *challengeFile != "" {
		var err error
		if challenge, err = readTrimmed(*challengeFile); err != nil {
			return fmt.Errorf("--challenge-file: %w", err)
		}
	}
	d, err := tpm.Open(*tpmPath)
	if err != nil {
		return fmt.Errorf("--tpm: %w", err)
	}
	defer func() { _ = d.Close() }()
	key, err := d.CreateKey(tpm.KeyTemplate())
	if err != nil {
		return err
	}
	if err := writeNewFile(*out, tpm.MarshalKey(key)); err != nil {
		return err
	}
	if *csrFile != "" {
		signer, err := d.Signer(key)
		if err != nil {
			return err
		}
		der, err := scepclient.CSR(signer, pkix.Name{CommonName: *cn}, challenge)
		if err != nil {
			return err
		}
		if err := writeNewFile(*csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "created a TPM signing key in %s\n", *out)
	return err
}

func readTPMKey(path, flagName string) (*tpm.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	k, err := tpm.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, path, err)
	}
	return k, nil
}

// writeNewFile writes b to a file that must not exist yet, mode 0600.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func runAttestMobile(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attest mobile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o attestCommon
	o.register(fs, attest.PlatformIOS)
	integration := fs.String("integration", "", "the IOS or ANDROID integration's ID (required)")
	hintFile := fs.String("hint-file", "", "file holding the integration's managementHint (required)")
	plain := fs.Bool("plain-hint", false, "send the hint itself instead of its HMAC (only where the integration allows it)")
	if err := parseAttestFlags(fs, args, env); err != nil {
		return err
	}
	if *integration == "" || *hintFile == "" {
		return errors.New("--integration and --hint-file are required")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	h, err := readTrimmed(*hintFile)
	if err != nil {
		return fmt.Errorf("--hint-file: %w", err)
	}
	hint := attest.Hint(h)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var dc *attest.DeviceContext
	if *plain {
		n, err := c.Nonce(ctx)
		if err != nil {
			return err
		}
		dc, err = c.Verify(ctx, &attest.VerifyRequest{Nonce: n.Nonce, DeviceID: o.deviceID, Platform: o.platform, IntegrationID: *integration, ManagementHint: hint.Reveal()})
		if err != nil {
			return err
		}
	} else if dc, err = c.AttestMobile(ctx, *integration, hint, o.deviceID, o.platform); err != nil {
		return err
	}
	return printContext(stdout, dc)
}

// printContext prints dc and returns errNotManaged unless it is managed.
func printContext(w io.Writer, dc *attest.DeviceContext) error {
	b, err := json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
		return err
	}
	if !dc.Managed {
		return fmt.Errorf("%w: %s", errNotManaged, dc.Reason)
	}
	return nil
}

func readCertPEM(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--cert: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		if c, err := x509.ParseCertificate(b); err == nil {
			return c, nil // DER is fine too
		}
		return nil, fmt.Errorf("--cert %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("--cert %s: %w", path, err)
	}
	return c, nil
}

func readKeyPEM(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("--key %s: no PEM block", path)
	}
	var key any
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("--key %s: PEM block %q is not an unencrypted private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("--key %s: %T cannot sign", path, key)
	}
	return s, nil
}
