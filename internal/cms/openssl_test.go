package cms

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests check interoperability with OpenSSL's CMS implementation, an
// independent one (PROTOCOLS.md §5 item 6): envelopes made by `openssl cms
// -encrypt` (DER and -stream BER) decrypt with Decrypt, and envelopes made by
// Encrypt decrypt with `openssl cms -decrypt`. OpenSSL 3 keeps DES in its legacy
// provider; those cases load it and skip only when it is missing.

type opensslFixture struct {
	bin       string
	dir       string
	certPath  string
	keyPath   string
	r         recipient
	plaintext []byte
	inPath    string
	legacy    bool
}

var opensslOnce struct {
	sync.Once
	legacy bool
}

func newOpenSSL(t *testing.T) *opensslFixture {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not in PATH")
	}
	a, _ := testRecipients(t)
	dir := t.TempDir()
	f := &opensslFixture{
		bin:      bin,
		dir:      dir,
		certPath: filepath.Join(dir, "cert.pem"),
		keyPath:  filepath.Join(dir, "key.pem"),
		inPath:   filepath.Join(dir, "plaintext.bin"),
		r:        a,
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		t.Fatal(err)
	}
	// Binary content longer than one -stream chunk, with CR and LF bytes that a
	// text-mode conversion would mangle.
	for i := 0; len(f.plaintext) < 5000; i++ {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		f.plaintext = append(f.plaintext, h[:]...)
		f.plaintext = append(f.plaintext, '\r', '\n')
	}
	for path, data := range map[string][]byte{
		f.certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw}),
		f.keyPath:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		f.inPath:   f.plaintext,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opensslOnce.Do(func() {
		opensslOnce.legacy = exec.Command(bin, "list", "-providers", "-provider", "legacy").Run() == nil
	})
	f.legacy = opensslOnce.legacy
	return f
}

func (f *opensslFixture) run(t *testing.T, args ...string) error {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), f.bin, args...).CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

func legacyArgs(c ContentEncryption) []string {
	if c == DESCBC {
		return []string{"-provider", "legacy", "-provider", "default"}
	}
	return nil
}

type opensslCipher struct {
	flag string
	c    ContentEncryption
}

// opensslCiphers are the content encryptions `openssl cms -encrypt` offers that we
// implement. OpenSSL writes GCM as AuthEnvelopedData.
var opensslCiphers = []opensslCipher{
	{"-des", DESCBC}, {"-des3", DESEDE3CBC},
	{"-aes128", AES128CBC}, {"-aes192", AES192CBC}, {"-aes256", AES256CBC},
	{"-aes-128-gcm", AES128GCM}, {"-aes-192-gcm", AES192GCM}, {"-aes-256-gcm", AES256GCM},
}

type opensslKeyTransport struct {
	name string
	args []string
	p    Params
}

func oaepArgs(md, mgf string) []string {
	args := []string{"-keyopt", "rsa_padding_mode:oaep"}
	if md != "" {
		args = append(args, "-keyopt", "rsa_oaep_md:"+md)
	}
	if mgf != "" {
		args = append(args, "-keyopt", "rsa_mgf1_md:"+mgf)
	}
	return args
}

var opensslKeyTransports = []opensslKeyTransport{
	{"rsaEncryption", nil, Params{KeyTransport: RSAPKCS1v15}},
	{"oaep", oaepArgs("", ""), Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1}},
	{"oaep-sha224", oaepArgs("sha224", ""), Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA224}},
	{"oaep-sha256", oaepArgs("sha256", ""), Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256}},
	{"oaep-sha384", oaepArgs("sha384", ""), Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA384}},
	{"oaep-sha512", oaepArgs("sha512", ""), Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA512}},
	{"oaep-sha256-mgf1-sha1", oaepArgs("sha256", "sha1"),
		Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256, OAEPMGFHash: crypto.SHA1}},
}

func TestOpenSSLEncryptGoDecrypts(t *testing.T) {
	t.Parallel()
	f := newOpenSSL(t)
	for _, oc := range opensslCiphers {
		for _, kt := range opensslKeyTransports {
			for _, stream := range []bool{false, true} {
				for _, keyid := range []bool{false, true} {
					name := oc.flag[1:] + "/" + kt.name
					if stream {
						name += "/stream"
					}
					if keyid {
						name += "/keyid"
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						if oc.c == DESCBC && !f.legacy {
							t.Skip("OpenSSL legacy provider unavailable: cannot make DES envelopes")
						}
						out := filepath.Join(t.TempDir(), "env.der")
						args := []string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", f.inPath, "-out", out,
							oc.flag, "-recip", f.certPath}
						args = append(args, kt.args...)
						args = append(args, legacyArgs(oc.c)...)
						if stream {
							args = append(args, "-stream")
						}
						if keyid {
							args = append(args, "-keyid")
						}
						if err := f.run(t, args...); err != nil {
							t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
						}
						env, err := os.ReadFile(out)
						if err != nil {
							t.Fatal(err)
						}
						if indefinite := len(env) > 1 && env[1] == 0x80; indefinite != stream {
							t.Fatalf("openssl -stream %v wrote an envelope with indefinite length %v", stream, indefinite)
						}
						got, p, err := Decrypt(env, f.r.cert, f.r.key)
						if err != nil {
							t.Fatalf("Decrypt(openssl %s) error: %v", name, err)
						}
						if !bytes.Equal(got, f.plaintext) {
							t.Errorf("Decrypt(openssl %s) returned %d bytes that differ from the %d-byte plaintext", name, len(got), len(f.plaintext))
						}
						want := kt.p
						want.ContentEncryption = oc.c
						info, _ := oc.c.info()
						want.Authenticated = info.gcm
						if p != want {
							t.Errorf("Decrypt(openssl %s) params = %v, want %v", name, p, want)
						}
						// The reply mirrors the request: Encrypt with the same
						// Params must produce something OpenSSL reads back.
						if keyid || stream {
							return
						}
						reply := mustEncrypt(t, f.plaintext, f.r.cert, p)
						if got := f.decrypt(t, reply, p); !bytes.Equal(got, f.plaintext) {
							t.Errorf("openssl cms -decrypt(Encrypt(%v)) differs from the plaintext", p)
						}
					})
				}
			}
		}
	}
}

// decrypt runs `openssl cms -decrypt` on env and returns the content.
func (f *opensslFixture) decrypt(t *testing.T, env []byte, p Params) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "env.der"), filepath.Join(dir, "out.bin")
	if err := os.WriteFile(in, env, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"cms", "-decrypt", "-binary", "-inform", "DER", "-in", in, "-out", out,
		"-recip", f.certPath, "-inkey", f.keyPath}
	args = append(args, legacyArgs(p.ContentEncryption)...)
	if err := f.run(t, args...); err != nil {
		t.Fatalf("openssl cms -decrypt (%v): %v", p, err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestGoEncryptOpenSSLDecrypts(t *testing.T) {
	t.Parallel()
	f := newOpenSSL(t)
	for _, p := range allParams() {
		info, _ := p.ContentEncryption.info()
		if info.gcm && !p.Authenticated {
			// OpenSSL reads GCM only in AuthEnvelopedData; GCM in EnvelopedData is
			// smallstep/pkcs7's format and is checked against it in smallstep_test.go.
			continue
		}
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			if p.ContentEncryption == DESCBC && !f.legacy {
				t.Skip("OpenSSL legacy provider unavailable: cannot decrypt DES envelopes")
			}
			env := mustEncrypt(t, f.plaintext, f.r.cert, p)
			if got := f.decrypt(t, env, p); !bytes.Equal(got, f.plaintext) {
				t.Errorf("openssl cms -decrypt(Encrypt(%v)) returned %d bytes that differ from the plaintext", p, len(got))
			}
			// OpenSSL also reads our envelope re-encoded as indefinite-length BER.
			if got := f.decrypt(t, mustIndefinite(t, env), p); !bytes.Equal(got, f.plaintext) {
				t.Errorf("openssl cms -decrypt(BER(Encrypt(%v))) differs from the plaintext", p)
			}
		})
	}
}

func TestOpenSSLUnsupportedCipher(t *testing.T) {
	t.Parallel()
	f := newOpenSSL(t)
	for _, flag := range []string{"-camellia128", "-aria128", "-rc2"} {
		t.Run(flag[1:], func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "env.der")
			args := []string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", f.inPath, "-out", out, flag, "-recip", f.certPath}
			if flag == "-rc2" {
				if !f.legacy {
					t.Skip("OpenSSL legacy provider unavailable")
				}
				args = append(args, "-provider", "legacy", "-provider", "default")
			}
			if err := f.run(t, args...); err != nil {
				t.Skipf("openssl cannot encrypt with %s: %v", flag, err)
			}
			env, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Decrypt(env, f.r.cert, f.r.key); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Errorf("Decrypt(openssl %s) error = %v, want ErrUnsupportedAlgorithm", flag, err)
			}
		})
	}
}

func TestOpenSSLTwoRecipients(t *testing.T) {
	t.Parallel()
	f := newOpenSSL(t)
	_, b := testRecipients(t)
	other := filepath.Join(f.dir, "other.pem")
	if err := os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, keyid := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "env.der")
		args := []string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", f.inPath, "-out", out, "-aes256"}
		if keyid {
			args = append(args, "-keyid")
		}
		// b's recipientInfo comes first, so only matching by rid finds a's.
		args = append(args, "-recip", other, "-recip", f.certPath)
		if err := f.run(t, args...); err != nil {
			t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
		}
		env, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []recipient{f.r, b} {
			got, _, err := Decrypt(env, r.cert, r.key)
			if err != nil || !bytes.Equal(got, f.plaintext) {
				t.Errorf("Decrypt(two recipients, keyid %v) for %s = %d bytes, %v; want the plaintext",
					keyid, r.cert.Subject.CommonName, len(got), err)
			}
		}
		if _, _, err := Decrypt(env, nil, f.r.key); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Decrypt(two recipients, nil certificate) error = %v, want ErrDecrypt", err)
		}
	}
}
