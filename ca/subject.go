package ca

import "strings"

// subjectKeyword separates user and device ID in Okta-style subjects:
// "CN={EmailUserName} managementAttestation {DeviceUid}" (Workspace ONE),
// "CN={{UserPrincipalName}} ManagementAttestation {{AAD_Device_ID}}"
// (Intune); PROTOCOLS.md §1.8.
const subjectKeyword = "managementAttestation"

// ParseSubjectCN splits an Okta-style common name "<user>
// managementAttestation <deviceID>" (keyword case-insensitive, fields
// separated by white space) into user and device ID. Any other shape, which
// Okta permits, gives ("", "").
func ParseSubjectCN(cn string) (user, deviceID string) {
	f := strings.Fields(cn)
	if len(f) != 3 || !strings.EqualFold(f[1], subjectKeyword) {
		return "", ""
	}
	return f[0], f[2]
}
