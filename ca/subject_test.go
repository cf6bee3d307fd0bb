package ca

import "testing"

func TestParseSubjectCN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cn, wantUser, wantDevice string
	}{
		{cn: "alice managementAttestation UDID123", wantUser: "alice", wantDevice: "UDID123"},
		{cn: "alice@example.com ManagementAttestation 6f1c1a2e-1b0e-4a8e-9d1f-3b5c7e9a0d11", wantUser: "alice@example.com", wantDevice: "6f1c1a2e-1b0e-4a8e-9d1f-3b5c7e9a0d11"},
		{cn: "bob MANAGEMENTATTESTATION D1", wantUser: "bob", wantDevice: "D1"},
		{cn: "  bob \t managementattestation  D1 ", wantUser: "bob", wantDevice: "D1"},
		{cn: ""},
		{cn: "device.example.com"},
		{cn: "managementAttestation UDID123"},
		{cn: "alice managementAttestation"},
		{cn: "alice smith managementAttestation UDID123"},
		{cn: "alice managementAttestation UDID 123"},
		{cn: "alice attestation UDID123"},
		{cn: "alice managementAttestationX UDID123"},
	}
	for _, tc := range tests {
		t.Run(tc.cn, func(t *testing.T) {
			t.Parallel()
			user, device := ParseSubjectCN(tc.cn)
			if user != tc.wantUser || device != tc.wantDevice {
				t.Errorf("ParseSubjectCN(%q) = %q, %q, want %q, %q", tc.cn, user, device, tc.wantUser, tc.wantDevice)
			}
		})
	}
}
