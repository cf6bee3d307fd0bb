package scep

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/internal/ber"
)

// oidChallengePassword is PKCS#9 challengePassword (RFC 2985 §5.4.1).
var oidChallengePassword = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07} // 1.2.840.113549.1.9.7

// parseCSR parses the PKCS#10 request carried in a PKCSReq or RenewalReq and
// returns it with its challengePassword ("" when absent).
func parseCSR(b []byte) (*x509.CertificateRequest, string, error) {
	der, err := ber.ToDER(b)
	if err != nil {
		return nil, "", fmt.Errorf("scep: csr: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, "", fmt.Errorf("scep: csr: %w", err)
	}
	pw, err := challengePassword(csr.RawTBSCertificateRequest)
	if err != nil {
		return nil, "", fmt.Errorf("scep: csr: %w", err)
	}
	return csr, pw, nil
}

// challengePassword finds the challengePassword attribute in a
// CertificationRequestInfo. crypto/x509 does not expose it: its Attributes
// field only decodes SEQUENCE-valued attributes.
func challengePassword(tbs []byte) (string, error) {
	in := cryptobyte.String(tbs)
	var info cryptobyte.String
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) {
		return "", errors.New("malformed CertificationRequestInfo")
	}
	var version int
	var subject, spki cryptobyte.String
	if !info.ReadASN1Integer(&version) || !info.ReadASN1(&subject, cbasn1.SEQUENCE) || !info.ReadASN1(&spki, cbasn1.SEQUENCE) {
		return "", errors.New("malformed CertificationRequestInfo")
	}
	var attrs cryptobyte.String
	var present bool
	if !info.ReadOptionalASN1(&attrs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return "", errors.New("malformed attributes")
	}
	for !attrs.Empty() {
		var attr, oid, values cryptobyte.String
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !attr.ReadASN1(&values, cbasn1.SET) {
			return "", errors.New("malformed attribute")
		}
		if string(oid) != string(oidChallengePassword) {
			continue
		}
		var tag cbasn1.Tag
		var value cryptobyte.String
		if !values.ReadAnyASN1(&value, &tag) {
			return "", errors.New("malformed challengePassword")
		}
		switch tag {
		case cbasn1.PrintableString, cbasn1.UTF8String, cbasn1.IA5String, cbasn1.Tag(20) /* T61String */, cbasn1.Tag(30) /* BMPString */ :
		default:
			return "", fmt.Errorf("challengePassword has unexpected tag %d", tag)
		}
		if tag == cbasn1.Tag(30) {
			return decodeBMP(value)
		}
		return string(value), nil
	}
	return "", nil
}

func decodeBMP(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd-length BMPString")
	}
	r := make([]rune, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		r = append(r, rune(b[i])<<8|rune(b[i+1]))
	}
	return string(r), nil
}

// publicKeyHash is SHA-256 of the SubjectPublicKeyInfo DER: the key identity
// a retried transaction must repeat.
func publicKeyHash(spki []byte) []byte {
	h := sha256.Sum256(spki)
	return h[:]
}

func hashString(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
