// Package scepclient is a SCEP (RFC 8894) client: it builds pkiMessages
// with any cipher, key transport and digest, sends them by GET or POST, and
// verifies and opens CertReps. `scepca bench` drives the server with it and
// tests use it beside the real Debian clients. It is written from the RFC,
// not from package scep, so the two check each other; it imports no scepca
// package outside internal.
package scepclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/internal/cms"
)

// SCEP attribute OIDs (RFC 8894 §3.2.1).
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// Message types (RFC 8894 §3.2.1.2).
const (
	TypeCertRep    = "3"
	TypeRenewalReq = "17"
	TypePKCSReq    = "19"
	TypeCertPoll   = "20"
	TypeGetCert    = "21"
	TypeGetCRL     = "22"
)

// Client talks to one SCEP URL.
type Client struct {
	URL  string
	HTTP *http.Client
	// Method sends PKIOperation by "POST" (default) or "GET".
	Method string
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// get performs a GET with operation and message.
func (c *Client) get(ctx context.Context, op, message string) (*http.Response, []byte, error) {
	u := c.URL + "?operation=" + op
	if message != "" {
		u += "&message=" + url.QueryEscape(message)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.do(req)
}

func (c *Client) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, body, fmt.Errorf("scepclient: %s: HTTP %d: %s", req.URL.Query().Get("operation"), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return resp, body, nil
}

// GetCACaps returns the capability keywords.
func (c *Client) GetCACaps(ctx context.Context) ([]string, error) {
	_, body, err := c.get(ctx, "GetCACaps", "") //nolint:bodyclose // do reads and closes the body; only status and headers are returned
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(body)), nil
}

// GetCACert returns the CA (and RA) certificates and the content type.
func (c *Client) GetCACert(ctx context.Context) ([]*x509.Certificate, string, error) {
	resp, body, err := c.get(ctx, "GetCACert", "") //nolint:bodyclose // do reads and closes the body; only status and headers are returned
	if err != nil {
		return nil, "", err
	}
	ct := resp.Header.Get("Content-Type")
	switch ct {
	case "application/x-x509-ca-cert":
		cert, err := x509.ParseCertificate(body)
		if err != nil {
			return nil, ct, err
		}
		return []*x509.Certificate{cert}, ct, nil
	case "application/x-x509-ca-ra-cert":
		p7, err := pkcs7.Parse(body)
		if err != nil {
			return nil, ct, err
		}
		return p7.Certificates, ct, nil
	}
	return nil, ct, fmt.Errorf("scepclient: GetCACert: unexpected content type %q", ct)
}

// Recipient picks the certificate to encrypt to: an RA (an end-entity with
// keyEncipherment) when present, else the CA.
func Recipient(certs []*x509.Certificate) *x509.Certificate {
	for _, c := range certs {
		if !c.IsCA && c.KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
			return c
		}
	}
	if len(certs) == 0 {
		return nil
	}
	return certs[0]
}

// PKIOperation sends a pkiMessage and returns the raw CertRep.
func (c *Client) PKIOperation(ctx context.Context, msg []byte) ([]byte, error) {
	if c.Method == http.MethodGet {
		_, body, err := c.get(ctx, "PKIOperation", base64.StdEncoding.EncodeToString(msg)) //nolint:bodyclose // do reads and closes the body; only status and headers are returned
		return body, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"?operation=PKIOperation", bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-pki-message")
	_, body, err := c.do(req) //nolint:bodyclose // do reads and closes the body; only status and headers are returned
	return body, err
}

// Message is a request pkiMessage.
type Message struct {
	Type          string
	TransactionID string
	SenderNonce   []byte // random when nil
	// Signer and Key sign the message; the reply is encrypted to Signer.
	Signer *x509.Certificate
	Key    *rsa.PrivateKey
	// Recipient receives the envelope (the RA or CA).
	Recipient *x509.Certificate
	// Content is enveloped with Params, unless Envelope is given (e.g. made
	// by openssl).
	Content  []byte
	Envelope []byte
	Params   cms.Params
	// Digest signs the message; default SHA-256.
	Digest crypto.Hash
}

var digestOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1:   pkcs7.OIDDigestAlgorithmSHA1,
	crypto.SHA256: pkcs7.OIDDigestAlgorithmSHA256,
	crypto.SHA384: pkcs7.OIDDigestAlgorithmSHA384,
	crypto.SHA512: pkcs7.OIDDigestAlgorithmSHA512,
}

// Marshal builds the signed pkiMessage (DER).
func (m *Message) Marshal() ([]byte, error) {
	env := m.Envelope
	if env == nil {
		var err error
		if env, err = cms.Encrypt(m.Content, m.Recipient, m.Params); err != nil {
			return nil, err
		}
	}
	sd, err := pkcs7.NewSignedData(env)
	if err != nil {
		return nil, err
	}
	digest := m.Digest
	if digest == 0 {
		digest = crypto.SHA256
	}
	oid, ok := digestOIDs[digest]
	if !ok {
		return nil, fmt.Errorf("scepclient: unsupported digest %v", digest)
	}
	sd.SetDigestAlgorithm(oid)
	nonce := m.SenderNonce
	if nonce == nil {
		nonce = make([]byte, 16)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
	}
	attrs := []pkcs7.Attribute{
		{Type: oidMessageType, Value: printable(m.Type)},
		{Type: oidTransactionID, Value: printable(m.TransactionID)},
		{Type: oidSenderNonce, Value: nonce},
	}
	if err := sd.AddSigner(m.Signer, m.Key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

func printable(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagPrintableString, Bytes: []byte(s)}
}

// Reply is a verified CertRep.
type Reply struct {
	Status         string // "0" SUCCESS, "2" FAILURE, "3" PENDING
	FailInfo       string
	TransactionID  string
	SenderNonce    []byte
	RecipientNonce []byte
	DigestOID      asn1.ObjectIdentifier
	Signer         *x509.Certificate
	// For SUCCESS: the envelope's algorithms and its contents.
	EnvelopeParams cms.Params
	Certificates   []*x509.Certificate
	CRLs           [][]byte
}

// Status values.
const (
	StatusSuccess = "0"
	StatusFailure = "2"
	StatusPending = "3"
)

// ParseReply verifies a CertRep's signature and, for SUCCESS, decrypts its
// envelope with the requester's certificate and key.
func ParseReply(b []byte, cert *x509.Certificate, key *rsa.PrivateKey) (*Reply, error) {
	p7, err := pkcs7.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("scepclient: parse CertRep: %w", err)
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("scepclient: verify CertRep: %w", err)
	}
	r := &Reply{Signer: p7.GetOnlySigner()}
	if len(p7.Signers) == 1 {
		r.DigestOID = p7.Signers[0].DigestAlgorithm.Algorithm
	}
	var mt, status, failInfo, txID asn1.RawValue
	if err := p7.UnmarshalSignedAttribute(oidMessageType, &mt); err != nil || string(mt.Bytes) != TypeCertRep {
		return nil, fmt.Errorf("scepclient: CertRep messageType %q: %v", mt.Bytes, err)
	}
	if err := p7.UnmarshalSignedAttribute(oidPKIStatus, &status); err != nil {
		return nil, fmt.Errorf("scepclient: pkiStatus: %w", err)
	}
	r.Status = string(status.Bytes)
	if err := p7.UnmarshalSignedAttribute(oidTransactionID, &txID); err != nil {
		return nil, fmt.Errorf("scepclient: transactionID: %w", err)
	}
	r.TransactionID = string(txID.Bytes)
	_ = p7.UnmarshalSignedAttribute(oidSenderNonce, &r.SenderNonce)
	_ = p7.UnmarshalSignedAttribute(oidRecipientNonce, &r.RecipientNonce)
	switch r.Status {
	case StatusFailure:
		if err := p7.UnmarshalSignedAttribute(oidFailInfo, &failInfo); err != nil {
			return nil, fmt.Errorf("scepclient: FAILURE without failInfo: %w", err)
		}
		r.FailInfo = string(failInfo.Bytes)
		return r, nil
	case StatusPending:
		return r, nil
	case StatusSuccess:
	default:
		return nil, fmt.Errorf("scepclient: unknown pkiStatus %q", r.Status)
	}
	plain, params, err := cms.Decrypt(p7.Content, cert, key)
	if err != nil {
		return nil, fmt.Errorf("scepclient: decrypt CertRep: %w", err)
	}
	r.EnvelopeParams = params
	inner, err := pkcs7.Parse(plain)
	if err != nil {
		return nil, fmt.Errorf("scepclient: degenerate SignedData: %w", err)
	}
	r.Certificates = inner.Certificates
	for _, crl := range inner.CRLs {
		der, err := asn1.Marshal(crl)
		if err != nil {
			return nil, err
		}
		r.CRLs = append(r.CRLs, der)
	}
	return r, nil
}

// Do marshals m, sends it and parses the reply; it checks that the reply
// answers m (transactionID and recipientNonce).
func (c *Client) Do(ctx context.Context, m *Message) (*Reply, error) {
	if m.SenderNonce == nil {
		m.SenderNonce = make([]byte, 16)
		if _, err := rand.Read(m.SenderNonce); err != nil {
			return nil, err
		}
	}
	msg, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	out, err := c.PKIOperation(ctx, msg)
	if err != nil {
		return nil, err
	}
	r, err := ParseReply(out, m.Signer, m.Key)
	if err != nil {
		return nil, err
	}
	if r.TransactionID != m.TransactionID || !bytes.Equal(r.RecipientNonce, m.SenderNonce) {
		return nil, errors.New("scepclient: reply does not answer the request (transactionID or recipientNonce)")
	}
	return r, nil
}

// SelfSigned makes the throwaway signer certificate a SCEP client uses for
// PKCSReq (RFC 8894 §2.3), valid for a day.
func SelfSigned(key *rsa.PrivateKey, cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// oidChallengePassword is PKCS #9 challengePassword.
var oidChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}

// CSR builds a PKCS #10 request for key and subject with a challengePassword
// attribute (omitted when empty), signed with SHA-256 (RSA PKCS #1 v1.5 or
// ECDSA). It assembles the CertificationRequestInfo itself because
// crypto/x509 cannot express challengePassword.
func CSR(key crypto.Signer, subject pkix.Name, challenge string) ([]byte, error) {
	name, err := asn1.Marshal(subject.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	var info cryptobyte.Builder
	info.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(name)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			if challenge == "" {
				return
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidChallengePassword)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.PrintableString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(challenge)) })
				})
			})
		})
	})
	tbs, err := info.Bytes()
	if err != nil {
		return nil, err
	}
	var sigAlg pkix.AlgorithmIdentifier
	switch key.Public().(type) {
	case *rsa.PublicKey:
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}
	default:
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}
	}
	h := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, sigAlg, asn1.BitString{Bytes: sig, BitLength: len(sig) * 8}})
}

// IssuerAndSerial is the content of GetCert and GetCRL (RFC 8894 §3.3.3).
func IssuerAndSerial(issuer *x509.Certificate, serial *big.Int) ([]byte, error) {
	return asn1.Marshal(struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}{asn1.RawValue{FullBytes: issuer.RawSubject}, serial})
}

// IssuerAndSubject is the content of CertPoll (RFC 8894 §3.3.3).
func IssuerAndSubject(issuer *x509.Certificate, subject []byte) ([]byte, error) {
	return asn1.Marshal(struct {
		Issuer  asn1.RawValue
		Subject asn1.RawValue
	}{asn1.RawValue{FullBytes: issuer.RawSubject}, asn1.RawValue{FullBytes: subject}})
}
