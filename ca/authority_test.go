package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func TestInit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		keyType   string
		wantRA    bool
		wantKey   x509.PublicKeyAlgorithm
		wantInter x509.KeyUsage
	}{
		{
			name: "rsa", keyType: KeyTypeRSA, wantKey: x509.RSA,
			wantInter: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		},
		{
			name: "default is rsa", keyType: "", wantKey: x509.RSA,
			wantInter: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		},
		{
			name: "ecdsa", keyType: KeyTypeECDSA, wantKey: x509.ECDSA, wantRA: true,
			wantInter: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newMemStore()
			cfg := testConfig(t, tc.keyType)
			cfg.Org = "Example Corp"
			a, err := Init(t.Context(), st, testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init(%q) = %v, want nil", tc.keyType, err)
			}
			root, inter := a.Root(), a.Intermediate()

			if got, want := root.Subject.CommonName, "Example Corp Root Authority"; got != want {
				t.Errorf("Init(%q) root CN = %q, want %q", tc.keyType, got, want)
			}
			if got, want := inter.Subject.CommonName, "Example Corp Intermediate Authority"; got != want {
				t.Errorf("Init(%q) intermediate CN = %q, want %q", tc.keyType, got, want)
			}
			if !bytes.Equal(root.RawIssuer, root.RawSubject) || root.CheckSignatureFrom(root) != nil {
				t.Errorf("Init(%q) root is not self-signed", tc.keyType)
			}
			if got, want := root.KeyUsage, x509.KeyUsageCertSign|x509.KeyUsageCRLSign; got != want {
				t.Errorf("Init(%q) root KU = %#x, want %#x", tc.keyType, got, want)
			}
			if got := inter.KeyUsage; got != tc.wantInter {
				t.Errorf("Init(%q) intermediate KU = %#x, want %#x", tc.keyType, got, tc.wantInter)
			}
			if !root.IsCA || root.MaxPathLen != 1 {
				t.Errorf("Init(%q) root IsCA, MaxPathLen = %v, %d, want true, 1", tc.keyType, root.IsCA, root.MaxPathLen)
			}
			if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
				t.Errorf("Init(%q) intermediate IsCA, MaxPathLen = %v, %d, want true, 0", tc.keyType, inter.IsCA, inter.MaxPathLen)
			}
			if root.PublicKeyAlgorithm != tc.wantKey || inter.PublicKeyAlgorithm != tc.wantKey {
				t.Errorf("Init(%q) key algorithms = %v, %v, want %v", tc.keyType, root.PublicKeyAlgorithm, inter.PublicKeyAlgorithm, tc.wantKey)
			}
			if p, ok := inter.PublicKey.(*ecdsa.PublicKey); ok && p.Curve.Params().Name != "P-256" {
				t.Errorf("Init(%q) intermediate curve = %s, want P-256", tc.keyType, p.Curve.Params().Name)
			}
			wantNB := testNow.Add(-clockSkew)
			if !root.NotBefore.Equal(wantNB) || !root.NotAfter.Equal(wantNB.AddDate(20, 0, 0)) {
				t.Errorf("Init(%q) root validity = %v to %v, want %v to %v", tc.keyType, root.NotBefore, root.NotAfter, wantNB, wantNB.AddDate(20, 0, 0))
			}
			if !inter.NotAfter.Equal(wantNB.AddDate(10, 0, 0)) {
				t.Errorf("Init(%q) intermediate NotAfter = %v, want %v", tc.keyType, inter.NotAfter, wantNB.AddDate(10, 0, 0))
			}
			if !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) || len(root.SubjectKeyId) != 20 {
				t.Errorf("Init(%q) intermediate AKI = %x, want root SKI %x", tc.keyType, inter.AuthorityKeyId, root.SubjectKeyId)
			}

			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(root)
			inters.AddCert(inter)
			opts := x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
			if _, err := inter.Verify(opts); err != nil {
				t.Errorf("Init(%q) intermediate Verify() = %v", tc.keyType, err)
			}

			ra := a.RA()
			if (ra != nil) != tc.wantRA {
				t.Fatalf("Init(%q) RA() = %v, want present %v", tc.keyType, ra != nil, tc.wantRA)
			}
			recipient, key := a.Recipient()
			wantChain := []*x509.Certificate{inter, root}
			if ra != nil {
				if _, err := ra.Verify(opts); err != nil {
					t.Errorf("Init(%q) RA Verify() = %v", tc.keyType, err)
				}
				if got, want := ra.KeyUsage, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment; got != want {
					t.Errorf("Init(%q) RA KU = %#x, want %#x", tc.keyType, got, want)
				}
				if ra.IsCA || ra.PublicKeyAlgorithm != x509.RSA || ra.PublicKey.(*rsa.PublicKey).N.BitLen() != 2048 {
					t.Errorf("Init(%q) RA IsCA, key = %v, %v, want an RSA-2048 end entity", tc.keyType, ra.IsCA, ra.PublicKeyAlgorithm)
				}
				if ra.NotAfter.After(inter.NotAfter) || ra.NotAfter.After(wantNB.AddDate(2, 0, 0)) || ra.NotAfter.Before(wantNB.AddDate(1, 11, 0)) {
					t.Errorf("Init(%q) RA NotAfter = %v, want about 2 years, before the intermediate's", tc.keyType, ra.NotAfter)
				}
				if recipient != ra {
					t.Errorf("Init(%q) Recipient() = %q, want the RA", tc.keyType, recipient.Subject.CommonName)
				}
				wantChain = append([]*x509.Certificate{ra}, wantChain...)
			} else if recipient != inter {
				t.Errorf("Init(%q) Recipient() = %q, want the intermediate", tc.keyType, recipient.Subject.CommonName)
			}
			if key == nil || !key.PublicKey.Equal(recipient.PublicKey) {
				t.Errorf("Init(%q) Recipient() key does not match the certificate", tc.keyType)
			}
			if err := CheckRecipient(recipient); err != nil {
				t.Errorf("CheckRecipient(%q) = %v, want nil", recipient.Subject.CommonName, err)
			}
			chain := a.Chain()
			if len(chain) != len(wantChain) {
				t.Fatalf("Chain() has %d certificates, want %d", len(chain), len(wantChain))
			}
			for i := range chain {
				if chain[i] != wantChain[i] {
					t.Errorf("Chain()[%d] = %q, want %q", i, chain[i].Subject.CommonName, wantChain[i].Subject.CommonName)
				}
			}

			// Stored records: keys sealed under the KEK with the record ID as AAD.
			cas, err := st.ListCAs(t.Context())
			if err != nil {
				t.Fatalf("ListCAs() = %v", err)
			}
			if want := len(wantChain); len(cas) != want {
				t.Fatalf("Init(%q) stored %d CA records, want %d", tc.keyType, len(cas), want)
			}
			roles := map[string]bool{}
			for _, rec := range cas {
				roles[rec.Role] = true
				if !rec.Active || !rec.CreatedAt.Equal(testNow) {
					t.Errorf("record %s: Active, CreatedAt = %v, %v, want true, %v", rec.ID, rec.Active, rec.CreatedAt, testNow)
				}
				cert, err := x509.ParseCertificate(rec.CertDER)
				if err != nil {
					t.Fatalf("record %s: ParseCertificate() = %v", rec.ID, err)
				}
				der, err := testKEK(t).Open(rec.KeyCiphertext, []byte(rec.ID))
				if err != nil {
					t.Fatalf("record %s: Open(key, AAD=ID) = %v", rec.ID, err)
				}
				k, err := x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					t.Fatalf("record %s: ParsePKCS8PrivateKey() = %v", rec.ID, err)
				}
				if !k.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
					t.Errorf("record %s: sealed key does not match the certificate", rec.ID)
				}
				if rec.Role == store.RoleIntermediate && rec.ID != a.IntermediateID() {
					t.Errorf("IntermediateID() = %q, want %q", a.IntermediateID(), rec.ID)
				}
				if rec.Role == store.RoleRoot && rec.ID != a.RootID() {
					t.Errorf("RootID() = %q, want %q", a.RootID(), rec.ID)
				}
			}
			if !roles[store.RoleRoot] || !roles[store.RoleIntermediate] || roles[store.RoleRA] != tc.wantRA {
				t.Errorf("Init(%q) stored roles %v", tc.keyType, roles)
			}

			if _, err := Init(t.Context(), st, testKEK(t), cfg); !errors.Is(err, store.ErrExists) {
				t.Errorf("Init(%q) again = %v, want %v", tc.keyType, err, store.ErrExists)
			}
		})
	}
}

func TestCheckRecipient(t *testing.T) {
	t.Parallel()
	rsaCA, _ := newTestAuthority(t, KeyTypeRSA)
	ecCA, _ := newTestAuthority(t, KeyTypeECDSA)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		wantErr bool
	}{
		{name: "rsa intermediate", cert: rsaCA.Intermediate()},
		{name: "ecdsa RA", cert: ecCA.RA()},
		{name: "certSign-only root", cert: rsaCA.Root(), wantErr: true},
		{name: "ecdsa intermediate", cert: ecCA.Intermediate(), wantErr: true},
		{name: "nil", cert: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckRecipient(tc.cert); (err != nil) != tc.wantErr {
				t.Errorf("CheckRecipient(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	for _, keyType := range []string{KeyTypeRSA, KeyTypeECDSA} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			created, st := newTestAuthority(t, keyType)
			// KeyType is ignored by Open: the store decides.
			a, err := Open(t.Context(), st, testKEK(t), testConfig(t, ""))
			if err != nil {
				t.Fatalf("Open(%q) = %v, want nil", keyType, err)
			}
			if a.IntermediateID() != created.IntermediateID() || a.RootID() != created.RootID() {
				t.Errorf("Open(%q) IDs = %s, %s, want %s, %s", keyType, a.IntermediateID(), a.RootID(), created.IntermediateID(), created.RootID())
			}
			got, want := a.Chain(), created.Chain()
			if len(got) != len(want) {
				t.Fatalf("Open(%q) Chain() has %d certificates, want %d", keyType, len(got), len(want))
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					t.Errorf("Open(%q) Chain()[%d] = %q, want %q", keyType, i, got[i].Subject.CommonName, want[i].Subject.CommonName)
				}
			}
			_, gotKey := a.Recipient()
			_, wantKey := created.Recipient()
			if !gotKey.Equal(wantKey) {
				t.Errorf("Open(%q) Recipient() key differs from Init's", keyType)
			}
			// Issue with the opened authority; the created one trusts it.
			cert, _ := issue(t, a, &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "alice", "D1")})
			if !created.Trusts(cert) {
				t.Errorf("Trusts(cert issued after Open) = false, want true")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, initialized := newTestAuthority(t, KeyTypeRSA)
	otherKEK, err := newKEK(bytes.Repeat([]byte{0x07}, kekSize))
	if err != nil {
		t.Fatalf("newKEK() = %v", err)
	}
	// An uploaded intermediate (no key) does not count as initialised.
	uploaded := newMemStore()
	other, _ := newTestAuthority(t, KeyTypeRSA)
	if err := uploaded.CreateCA(t.Context(), &store.CA{
		ID: "uploaded", Role: store.RoleIntermediate, CertDER: other.Intermediate().Raw, Active: true, CreatedAt: testNow,
	}); err != nil {
		t.Fatalf("CreateCA() = %v", err)
	}
	tests := []struct {
		name string
		st   Stores
		kek  *KEK
		want error
	}{
		{name: "empty store", st: newMemStore(), kek: testKEK(t), want: ErrNotInitialized},
		{name: "only an uploaded intermediate", st: uploaded, kek: testKEK(t), want: ErrNotInitialized},
		{name: "wrong KEK", st: initialized, kek: otherKEK, want: ErrWrongKEK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if a, err := Open(t.Context(), tc.st, tc.kek, testConfig(t, "")); !errors.Is(err, tc.want) {
				t.Errorf("Open(%q) = %v, %v, want %v", tc.name, a, err, tc.want)
			}
		})
	}
	if _, err := Open(t.Context(), initialized, nil, testConfig(t, "")); err == nil {
		t.Errorf("Open(nil KEK) = nil, want an error")
	}
	if _, err := Open(t.Context(), nil, testKEK(t), testConfig(t, "")); err == nil {
		t.Errorf("Open(nil store) = nil, want an error")
	}
	if _, err := Open(t.Context(), initialized, testKEK(t), Config{KeyType: "dsa"}); err == nil {
		t.Errorf("Open(invalid config) = nil, want an error")
	}
}

func TestOpenOrInit(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	first, created, err := OpenOrInit(t.Context(), st, testKEK(t), testConfig(t, KeyTypeECDSA))
	if err != nil || !created {
		t.Fatalf("OpenOrInit(empty) = %v, %v, want created, nil", created, err)
	}
	second, created, err := OpenOrInit(t.Context(), st, testKEK(t), testConfig(t, KeyTypeECDSA))
	if err != nil || created {
		t.Fatalf("OpenOrInit(initialised) = %v, %v, want not created, nil", created, err)
	}
	if first.IntermediateID() != second.IntermediateID() || first.RA() == nil || !first.RA().Equal(second.RA()) {
		t.Errorf("OpenOrInit() twice gave different authorities")
	}
	if _, _, err := OpenOrInit(t.Context(), st, otherTestKEK(t), testConfig(t, KeyTypeECDSA)); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("OpenOrInit(wrong KEK) = %v, want %v", err, ErrWrongKEK)
	}
}

func otherTestKEK(t *testing.T) *KEK {
	t.Helper()
	k, err := newKEK(bytes.Repeat([]byte{0x99}, kekSize))
	if err != nil {
		t.Fatalf("newKEK() = %v", err)
	}
	return k
}

func TestRootKeyExportAndRemoval(t *testing.T) {
	t.Parallel()
	for _, keyType := range []string{KeyTypeRSA, KeyTypeECDSA} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			var audit syncBuffer
			st := newMemStore()
			cfg := testConfig(t, keyType)
			cfg.Logger = newJSONLogger(&audit)
			a, err := Init(t.Context(), st, testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init() = %v", err)
			}

			p, err := a.ExportRootKey(t.Context())
			if err != nil {
				t.Fatalf("ExportRootKey() = %v, want nil", err)
			}
			block, rest := pem.Decode(p)
			if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) > 0 {
				t.Fatalf("ExportRootKey() = %q, want one PEM PRIVATE KEY block", p)
			}
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatalf("ExportRootKey() PKCS #8: %v", err)
			}
			if !k.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(a.Root().PublicKey) {
				t.Errorf("ExportRootKey() key does not match the root certificate")
			}

			if err := a.RemoveRootKey(t.Context()); err != nil {
				t.Fatalf("RemoveRootKey() = %v, want nil", err)
			}
			if err := a.RemoveRootKey(t.Context()); err != nil {
				t.Errorf("RemoveRootKey() again = %v, want nil", err)
			}
			rec, err := st.GetCA(t.Context(), a.RootID())
			if err != nil {
				t.Fatalf("GetCA(root) = %v", err)
			}
			if len(rec.KeyCiphertext) != 0 || !bytes.Equal(rec.CertDER, a.Root().Raw) {
				t.Errorf("root record after RemoveRootKey() has %d key bytes, want 0 and the certificate kept", len(rec.KeyCiphertext))
			}
			if _, err := a.ExportRootKey(t.Context()); !errors.Is(err, ErrRootKeyRemoved) {
				t.Errorf("ExportRootKey() after removal = %v, want %v", err, ErrRootKeyRemoved)
			}

			opened, err := Open(t.Context(), st, testKEK(t), testConfig(t, keyType))
			if err != nil {
				t.Fatalf("Open() after RemoveRootKey() = %v, want nil", err)
			}
			if !opened.Root().Equal(a.Root()) {
				t.Errorf("Open() after RemoveRootKey() root differs")
			}
			cert, _ := issue(t, opened, &Request{CSR: oktaCSR(t, cachedRSAKey(t, 2048, 1), "bob", "D2")})
			if !opened.Trusts(cert) || !a.Trusts(cert) {
				t.Errorf("Trusts(issued after root key removal) = false, want true")
			}
			for _, msg := range []string{`"msg":"certificate_authority.export_root_key"`, `"msg":"certificate_authority.remove_root_key"`} {
				if !bytes.Contains([]byte(audit.String()), []byte(msg)) {
					t.Errorf("audit log lacks %s:\n%s", msg, audit.String())
				}
			}
		})
	}
}

func TestTrusts(t *testing.T) {
	t.Parallel()
	a, _ := newTestAuthority(t, KeyTypeECDSA)
	// Another CA with the same names but its own keys.
	otherCfg := testConfig(t, KeyTypeRSA)
	otherCfg.rsaKey = nil // fresh keys, not the shared cache
	other, err := Init(t.Context(), newMemStore(), testKEK(t), otherCfg)
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	ours, _ := issue(t, a, &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "alice", "D1")})
	theirs, _ := issue(t, other, &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "alice", "D1")})
	tests := []struct {
		name string
		cert *x509.Certificate
		want bool
	}{
		{name: "issued by us", cert: ours, want: true},
		{name: "issued by another CA of the same name", cert: theirs, want: false},
		{name: "our intermediate", cert: a.Intermediate(), want: false},
		{name: "our RA", cert: a.RA(), want: true},
		{name: "nil", cert: nil, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := a.Trusts(tc.cert); got != tc.want {
				t.Errorf("Trusts(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "zero", cfg: Config{}},
		{name: "full", cfg: Config{Org: "Example", KeyType: KeyTypeECDSA, PublicURL: "https://ca.example.com/", Validity: 90 * 24 * time.Hour, Jitter: 7 * 24 * time.Hour}},
		{name: "http URL with path", cfg: Config{PublicURL: "http://127.0.0.1:8080/scepca"}},
		{name: "jitter half of default validity", cfg: Config{Jitter: DefaultValidity / 2}},
		{name: "unknown key type", cfg: Config{KeyType: "RSA"}, wantErr: true},
		{name: "relative URL", cfg: Config{PublicURL: "ca.example.com"}, wantErr: true},
		{name: "ftp URL", cfg: Config{PublicURL: "ftp://ca.example.com"}, wantErr: true},
		{name: "URL with query", cfg: Config{PublicURL: "https://ca.example.com/?x=1"}, wantErr: true},
		{name: "negative validity", cfg: Config{Validity: -time.Hour}, wantErr: true},
		{name: "tiny validity", cfg: Config{Validity: time.Second}, wantErr: true},
		{name: "negative jitter", cfg: Config{Jitter: -time.Hour}, wantErr: true},
		{name: "jitter over half the validity", cfg: Config{Validity: 10 * time.Hour, Jitter: 6 * time.Hour}, wantErr: true},
		{name: "org too long", cfg: Config{Org: string(bytes.Repeat([]byte("o"), maxOrgLen+1))}, wantErr: true},
		{name: "org with newline", cfg: Config{Org: "a\nb"}, wantErr: true},
		{name: "org with spaces around", cfg: Config{Org: " a "}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
		})
	}
}
