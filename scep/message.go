package scep

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/ber"
)

func init() {
	// Windows' self-signed SCEP signer certificate carries a critical
	// AuthorityKeyIdentifier, which crypto/x509 rejects since Go 1.23; the
	// fallback parser accepts it (PROTOCOLS.md §1.4, STYLE.md).
	pkcs7.SetFallbackLegacyX509CertificateParserEnabled(true)
}

// SCEP signed attribute OIDs (RFC 8894 §3.2.1).
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// MessageType is the SCEP messageType attribute (RFC 8894 §3.2.1.2).
type MessageType string

// Message types.
const (
	CertRep    MessageType = "3"
	RenewalReq MessageType = "17"
	PKCSReq    MessageType = "19"
	CertPoll   MessageType = "20"
	GetCert    MessageType = "21"
	GetCRL     MessageType = "22"
)

// String names the type for logs; it never panics on unknown wire values.
func (m MessageType) String() string {
	switch m {
	case CertRep:
		return "CertRep"
	case RenewalReq:
		return "RenewalReq"
	case PKCSReq:
		return "PKCSReq"
	case CertPoll:
		return "CertPoll"
	case GetCert:
		return "GetCert"
	case GetCRL:
		return "GetCRL"
	}
	return fmt.Sprintf("unknown(%.16q)", string(m))
}

// PKIStatus is the SCEP pkiStatus attribute.
type PKIStatus string

// Statuses (RFC 8894 §3.2.1.3).
const (
	StatusSuccess PKIStatus = "0"
	StatusFailure PKIStatus = "2"
	StatusPending PKIStatus = "3"
)

// FailInfo is the SCEP failInfo attribute (RFC 8894 §3.2.1.4).
type FailInfo string

// FailInfo values.
const (
	BadAlg          FailInfo = "0"
	BadMessageCheck FailInfo = "1"
	BadRequest      FailInfo = "2"
	BadTime         FailInfo = "3"
	BadCertID       FailInfo = "4"
)

// String names the failInfo for logs and metrics.
func (f FailInfo) String() string {
	switch f {
	case BadAlg:
		return "badAlg"
	case BadMessageCheck:
		return "badMessageCheck"
	case BadRequest:
		return "badRequest"
	case BadTime:
		return "badTime"
	case BadCertID:
		return "badCertId"
	}
	return "unknown"
}

// errUnparsable marks bytes that do not yield a SCEP pkiMessage with a
// transactionID and senderNonce: the only PKIOperation errors answered with
// an HTTP status rather than a signed CertRep (PROTOCOLS.md §1.5).
var errUnparsable = errors.New("scep: unparsable pkiMessage")

// Digest algorithms a request may use; the reply mirrors it. Only what
// smallstep/pkcs7 can verify and sign with: a SHA-224 request could be
// neither verified nor answered in kind (HTTP 500), so it is badAlg.
var digestByOID = map[string]crypto.Hash{
	pkcs7.OIDDigestAlgorithmSHA1.String():   crypto.SHA1,
	pkcs7.OIDDigestAlgorithmSHA256.String(): crypto.SHA256,
	pkcs7.OIDDigestAlgorithmSHA384.String(): crypto.SHA384,
	pkcs7.OIDDigestAlgorithmSHA512.String(): crypto.SHA512,
}

// PKIMessage is a parsed, not yet verified, SCEP request.
type PKIMessage struct {
	MessageType MessageType
	// TransactionID is the attribute's string value; transactionIDRaw is its
	// exact encoding, echoed in the reply.
	TransactionID    string
	transactionIDRaw asn1.RawValue
	SenderNonce      []byte
	// SignerCert is the certificate that signed the request: self-signed for
	// PKCSReq, the existing certificate for RenewalReq.
	SignerCert *x509.Certificate
	// DigestOID is the signer's digest algorithm; the reply mirrors it when
	// supported.
	DigestOID asn1.ObjectIdentifier
	// Envelope is the signed content: a CMS EnvelopedData.
	Envelope []byte

	p7 *pkcs7.PKCS7
	// recipient and recipientKey are the CA's recipient when the request
	// arrived: the envelope is decrypted and the CertRep signed with the
	// same one, even if a CA rotation is activated meanwhile.
	recipient    *x509.Certificate
	recipientKey *rsa.PrivateKey
}

// ParsePKIMessage parses a DER or BER pkiMessage. It fails with an error
// wrapping errUnparsable unless the bytes are a SignedData with one signer,
// its certificate, a messageType, a transactionID and a senderNonce. It does
// not check the signature; see Verify.
func ParsePKIMessage(b []byte) (*PKIMessage, error) {
	der, err := ber.ToDER(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnparsable, err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnparsable, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", errUnparsable, len(p7.Signers))
	}
	m := &PKIMessage{p7: p7, Envelope: p7.Content, DigestOID: p7.Signers[0].DigestAlgorithm.Algorithm}
	if err := p7.UnmarshalSignedAttribute(oidTransactionID, &m.transactionIDRaw); err != nil {
		return nil, fmt.Errorf("%w: transactionID: %v", errUnparsable, err)
	}
	if m.TransactionID, err = attrString(m.transactionIDRaw); err != nil || m.TransactionID == "" {
		return nil, fmt.Errorf("%w: transactionID is not a non-empty string", errUnparsable)
	}
	if err := p7.UnmarshalSignedAttribute(oidSenderNonce, &m.SenderNonce); err != nil || len(m.SenderNonce) == 0 {
		return nil, fmt.Errorf("%w: senderNonce missing", errUnparsable)
	}
	var mt asn1.RawValue
	if err := p7.UnmarshalSignedAttribute(oidMessageType, &mt); err != nil {
		return nil, fmt.Errorf("%w: messageType: %v", errUnparsable, err)
	}
	s, err := attrString(mt)
	if err != nil {
		return nil, fmt.Errorf("%w: messageType: %v", errUnparsable, err)
	}
	m.MessageType = MessageType(s)
	m.SignerCert = p7.GetOnlySigner()
	if m.SignerCert == nil {
		return nil, fmt.Errorf("%w: no certificate for the signer", errUnparsable)
	}
	return m, nil
}

// attrString reads a string-typed attribute value (PrintableString,
// UTF8String, IA5String, or an OCTET STRING some clients send).
func attrString(v asn1.RawValue) (string, error) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", errors.New("not a string")
	}
	switch v.Tag {
	case asn1.TagPrintableString, asn1.TagUTF8String, asn1.TagIA5String, asn1.TagOctetString, asn1.TagT61String:
		return string(v.Bytes), nil
	}
	return "", fmt.Errorf("unexpected tag %d", v.Tag)
}

// digest returns the request's digest, or false when it is not one we sign with.
func (m *PKIMessage) digest() (crypto.Hash, bool) {
	h, ok := digestByOID[m.DigestOID.String()]
	return h, ok
}

// Verify checks the request's signature and message digest under its signer
// certificate.
func (m *PKIMessage) Verify() error {
	return m.p7.Verify()
}

// reply holds what a CertRep carries.
type reply struct {
	status   PKIStatus
	failInfo FailInfo
	// content is the EnvelopedData for SUCCESS, nil otherwise.
	content []byte
}

// marshalCertRep signs a CertRep for req with the recipient certificate and
// key (RFC 8894 §3.3.2): transactionID copied, recipientNonce = the request's
// senderNonce, a fresh senderNonce, the request's digest mirrored.
func marshalCertRep(req *PKIMessage, rep reply, signer *x509.Certificate, key crypto.Signer) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(rep.content)
	if err != nil {
		return nil, fmt.Errorf("scep: certrep: %w", err)
	}
	digestOID := pkcs7.OIDDigestAlgorithmSHA256
	if _, ok := req.digest(); ok {
		digestOID = req.DigestOID
	}
	sd.SetDigestAlgorithm(digestOID)
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("scep: certrep nonce: %w", err)
	}
	attrs := []pkcs7.Attribute{
		{Type: oidTransactionID, Value: req.transactionIDRaw},
		{Type: oidPKIStatus, Value: printable(string(rep.status))},
		{Type: oidMessageType, Value: printable(string(CertRep))},
		{Type: oidSenderNonce, Value: nonce},
		{Type: oidRecipientNonce, Value: req.SenderNonce},
	}
	if rep.status == StatusFailure {
		attrs = append(attrs, pkcs7.Attribute{Type: oidFailInfo, Value: printable(string(rep.failInfo))})
	}
	if err := sd.AddSigner(signer, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, fmt.Errorf("scep: certrep sign: %w", err)
	}
	out, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("scep: certrep finish: %w", err)
	}
	return out, nil
}

// signData wraps content in a SignedData (id-data) signed with SHA-256 by
// signer, whose certificate it carries (RFC 8894 §4.7.1).
func signData(content []byte, signer *x509.Certificate, key crypto.Signer) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("scep: sign: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(signer, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("scep: sign: %w", err)
	}
	out, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("scep: sign: %w", err)
	}
	return out, nil
}

func printable(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagPrintableString, Bytes: []byte(s)}
}

// degenerate builds a certs-only (and CRLs-only) SignedData (RFC 8894
// §3.4).
func degenerate(certs []*x509.Certificate, crls [][]byte) ([]byte, error) {
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
	}
	type signedData struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      contentInfo
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		CRLs             asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos      asn1.RawValue
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: emptySet,
		ContentInfo:      contentInfo{ContentType: pkcs7.OIDData},
		SignerInfos:      emptySet,
	}
	if len(certs) > 0 {
		var raw []byte
		for _, c := range certs {
			raw = append(raw, c.Raw...)
		}
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: raw}
	}
	if len(crls) > 0 {
		var raw []byte
		for _, c := range crls {
			raw = append(raw, c...)
		}
		sd.CRLs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: raw}
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("scep: degenerate signed data: %w", err)
	}
	return asn1.Marshal(contentInfo{
		ContentType: pkcs7.OIDSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
}

// issuerAndSerial is the content of GetCert and GetCRL (RFC 8894 §3.3.3).
type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

func parseIssuerAndSerial(b []byte) (*issuerAndSerial, error) {
	der, err := ber.ToDER(b)
	if err != nil {
		return nil, err
	}
	var ias issuerAndSerial
	rest, err := asn1.Unmarshal(der, &ias)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 || ias.Serial == nil {
		return nil, errors.New("scep: malformed IssuerAndSerialNumber")
	}
	var name pkix.RDNSequence
	if _, err := asn1.Unmarshal(ias.Issuer.FullBytes, &name); err != nil {
		return nil, err
	}
	return &ias, nil
}
