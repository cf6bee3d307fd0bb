package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

// Tests of what the attestation verifier needs from the store (PROTOCOLS.md
// §4.2): devices, certificate bindings, lifecycle tombstones, deletable
// uploaded CAs and the sealed managementHint of mobile integrations.

func deviceCert(n string) *store.DeviceCertificate {
	return &store.DeviceCertificate{SHA256: "SHA-" + n, Serial: "S" + n, CAID: "ca-1"}
}

func attestation(deviceID string, cert *store.DeviceCertificate, at time.Time) *store.Attestation {
	return &store.Attestation{
		DeviceID:      deviceID,
		Platform:      "MACOS",
		User:          "alice",
		IntegrationID: "int-1",
		Certificate:   cert,
		At:            at,
	}
}

// testRecordAttestation: the first success creates the device and binds the
// certificate; a later one updates LastAttested and LastUsedAt but keeps
// FirstSeen, BoundAt and a single entry per certificate.
func testRecordAttestation(t *testing.T, s store.Store) {
	ctx := t.Context()
	c1 := deviceCert("1")
	dev, bind, err := s.RecordAttestation(ctx, attestation("dev-a", c1, t0))
	must(t, call("RecordAttestation", "dev-a", c1.SHA256, t0), err)
	wantDev := &store.Device{
		ID: "dev-a", Platform: "MACOS", User: "alice", IntegrationID: "int-1", Status: store.DeviceActive,
		FirstSeen: t0, LastAttested: t0, UpdatedAt: t0, Certificates: []store.DeviceCertificate{*c1},
	}
	wantBind := &store.Binding{CertSHA256: c1.SHA256, DeviceID: "dev-a", Serial: c1.Serial, CAID: c1.CAID, BoundAt: t0, LastUsedAt: t0}
	wantDiff(t, call("RecordAttestation", "dev-a", c1.SHA256, t0)+" device", wantDev, dev)
	wantDiff(t, call("RecordAttestation", "dev-a", c1.SHA256, t0)+" binding", wantBind, bind)

	t1 := t0.Add(time.Hour)
	a := attestation("dev-a", c1, t1)
	a.User = "" // an unknown user keeps the one on record
	a.Platform = "WINDOWS"
	dev, bind, err = s.RecordAttestation(ctx, a)
	must(t, call("RecordAttestation", "dev-a", c1.SHA256, t1), err)
	wantDev.Platform, wantDev.LastAttested, wantDev.UpdatedAt = "WINDOWS", t1, t1
	wantBind.LastUsedAt = t1
	wantDiff(t, call("RecordAttestation", "dev-a", c1.SHA256, t1)+" device", wantDev, dev)
	wantDiff(t, call("RecordAttestation", "dev-a", c1.SHA256, t1)+" binding", wantBind, bind)

	// A second certificate is added to the device, bound on its own.
	c2 := deviceCert("2")
	t2 := t0.Add(2 * time.Hour)
	dev, _, err = s.RecordAttestation(ctx, attestation("dev-a", c2, t2))
	must(t, call("RecordAttestation", "dev-a", c2.SHA256, t2), err)
	if len(dev.Certificates) != 2 || dev.Certificates[1] != *c2 || !dev.FirstSeen.Equal(t0) {
		t.Errorf("RecordAttestation(dev-a, second certificate) = %+v, want both certificates and FirstSeen %v", dev, t0)
	}

	got, err := s.GetDevice(ctx, "dev-a")
	must(t, call("GetDevice", "dev-a"), err)
	wantDiff(t, call("GetDevice", "dev-a"), dev, got)
	gotBind, err := s.GetBinding(ctx, c1.SHA256)
	must(t, call("GetBinding", c1.SHA256), err)
	wantDiff(t, call("GetBinding", c1.SHA256), wantBind, gotBind)

	binds, err := s.ListBindings(ctx)
	must(t, call("ListBindings"), err)
	if len(binds) != 2 || binds[0].CertSHA256 != c1.SHA256 || binds[1].CertSHA256 != c2.SHA256 {
		t.Errorf("ListBindings() = %+v, want the bindings of %s and %s in hash order", binds, c1.SHA256, c2.SHA256)
	}

	// A mobile proof has no certificate: the device is recorded alone.
	m := &store.Attestation{DeviceID: "phone", Platform: "IOS", IntegrationID: "int-ios", At: t1}
	dev, bind, err = s.RecordAttestation(ctx, m)
	must(t, call("RecordAttestation", "phone", t1), err)
	if bind != nil || dev.Status != store.DeviceActive || dev.Platform != "IOS" || len(dev.Certificates) != 0 {
		t.Errorf("RecordAttestation(phone) = %+v, %+v, want an ACTIVE IOS device without binding", dev, bind)
	}
	devs, err := s.ListDevices(ctx)
	must(t, call("ListDevices"), err)
	if len(devs) != 2 || devs[0].ID != "dev-a" || devs[1].ID != "phone" {
		t.Errorf("ListDevices() = %+v, want dev-a and phone in ID order", devs)
	}
}

// testRecordAttestationOtherDevice: a certificate bound to one device is
// refused for another, and the refusal writes nothing.
func testRecordAttestationOtherDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := deviceCert("1")
	_, _, err := s.RecordAttestation(ctx, attestation("dev-a", c, t0))
	must(t, call("RecordAttestation", "dev-a", c.SHA256, t0), err)

	t1 := t0.Add(time.Minute)
	dev, bind, err := s.RecordAttestation(ctx, attestation("dev-b", c, t1))
	wantErr(t, call("RecordAttestation", "dev-b", c.SHA256, t1), err, store.ErrConflict)
	if dev != nil || bind == nil || bind.DeviceID != "dev-a" || !bind.LastUsedAt.Equal(t0) {
		t.Errorf("RecordAttestation(dev-b, bound certificate) = %+v, %+v, want no device and the binding to dev-a unchanged", dev, bind)
	}
	if _, err := s.GetDevice(ctx, "dev-b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDevice(dev-b) after a refused attestation = %v, want %v", err, store.ErrNotFound)
	}
}

// testRecordAttestationLifecycle: SUSPENDED and DEACTIVATED devices are
// refused without a write; ACTIVE again attests; DELETED revokes the
// device's bindings for good, and a new certificate starts the device
// afresh.
func testRecordAttestationLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	c1 := deviceCert("1")
	_, _, err := s.RecordAttestation(ctx, attestation("dev-a", c1, t0))
	must(t, call("RecordAttestation", "dev-a", c1.SHA256, t0), err)

	for i, status := range []string{store.DeviceSuspended, store.DeviceDeactivated} {
		at := t0.Add(time.Duration(i+1) * time.Minute)
		dev, err := s.SetDeviceStatus(ctx, "dev-a", status, at)
		must(t, call("SetDeviceStatus", "dev-a", status, at), err)
		if dev.Status != status || !dev.UpdatedAt.Equal(at) {
			t.Errorf("SetDeviceStatus(dev-a, %s) = %+v, want that status, updated at %v", status, dev, at)
		}
		later := at.Add(time.Second)
		dev, bind, err := s.RecordAttestation(ctx, attestation("dev-a", c1, later))
		wantErr(t, call("RecordAttestation", "dev-a", c1.SHA256, later)+" while "+status, err, store.ErrConflict)
		if dev == nil || dev.Status != status || !dev.LastAttested.Equal(t0) || bind == nil || !bind.LastUsedAt.Equal(t0) {
			t.Errorf("RecordAttestation(dev-a) while %s = %+v, %+v, want the %s device and binding unchanged", status, dev, bind, status)
		}
	}
	t1 := t0.Add(time.Hour)
	_, err = s.SetDeviceStatus(ctx, "dev-a", store.DeviceActive, t1)
	must(t, call("SetDeviceStatus", "dev-a", store.DeviceActive, t1), err)
	_, _, err = s.RecordAttestation(ctx, attestation("dev-a", c1, t1))
	must(t, call("RecordAttestation", "dev-a", c1.SHA256, t1)+" after reactivation", err)

	t2 := t0.Add(2 * time.Hour)
	dev, err := s.SetDeviceStatus(ctx, "dev-a", store.DeviceDeleted, t2)
	must(t, call("SetDeviceStatus", "dev-a", store.DeviceDeleted, t2), err)
	if dev.Status != store.DeviceDeleted {
		t.Errorf("SetDeviceStatus(dev-a, DELETED) = %+v, want a DELETED tombstone", dev)
	}
	bind, err := s.GetBinding(ctx, c1.SHA256)
	must(t, call("GetBinding", c1.SHA256), err)
	if !bind.Revoked {
		t.Errorf("GetBinding(%s) after the device's deletion = %+v, want Revoked", c1.SHA256, bind)
	}
	t3 := t2.Add(time.Minute)
	_, _, err = s.RecordAttestation(ctx, attestation("dev-a", c1, t3))
	wantErr(t, call("RecordAttestation", "dev-a", c1.SHA256, t3)+" after deletion", err, store.ErrConflict)

	// Redeployed with a new certificate, the device starts afresh.
	c2 := deviceCert("2")
	dev, _, err = s.RecordAttestation(ctx, attestation("dev-a", c2, t3))
	must(t, call("RecordAttestation", "dev-a", c2.SHA256, t3), err)
	if dev.Status != store.DeviceActive || !dev.FirstSeen.Equal(t3) || len(dev.Certificates) != 1 || dev.Certificates[0] != *c2 {
		t.Errorf("RecordAttestation(dev-a, new certificate) after deletion = %+v, want a fresh ACTIVE device first seen %v with only the new certificate", dev, t3)
	}
	_, _, err = s.RecordAttestation(ctx, attestation("dev-a", c1, t3))
	wantErr(t, call("RecordAttestation", "dev-a", c1.SHA256, t3)+" old certificate after redeploy", err, store.ErrConflict)
}

// testRecordAttestationConcurrent: devices racing to bind one certificate
// produce exactly one binding, and only the winner's device is recorded.
func testRecordAttestationConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	c := deviceCert("1")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("dev-%02d", i)
			_, _, err := s.RecordAttestation(ctx, attestation(id, c, t0))
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, id)
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("RecordAttestation(%s) = %v, want nil or %v", id, err, store.ErrConflict)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d concurrent first uses bound %d devices %v, want exactly 1", n, len(winners), winners)
	}
	bind, err := s.GetBinding(ctx, c.SHA256)
	must(t, call("GetBinding", c.SHA256), err)
	if bind.DeviceID != winners[0] {
		t.Errorf("GetBinding(%s).DeviceID = %q, want the winner %q", c.SHA256, bind.DeviceID, winners[0])
	}
	devs, err := s.ListDevices(ctx)
	must(t, call("ListDevices"), err)
	if len(devs) != 1 || devs[0].ID != winners[0] {
		t.Errorf("ListDevices() = %d devices, want only the winner %q", len(devs), winners[0])
	}
}

// testDeviceNotFound: lookups and status changes of absent devices and
// bindings report store.ErrNotFound; an unknown status is refused.
func testDeviceNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetDevice(ctx, "absent")
	wantErr(t, call("GetDevice", "absent"), err, store.ErrNotFound)
	_, err = s.SetDeviceStatus(ctx, "absent", store.DeviceSuspended, t0)
	wantErr(t, call("SetDeviceStatus", "absent", store.DeviceSuspended, t0), err, store.ErrNotFound)
	_, err = s.GetBinding(ctx, "ABSENT")
	wantErr(t, call("GetBinding", "ABSENT"), err, store.ErrNotFound)

	_, _, err = s.RecordAttestation(ctx, attestation("dev-a", nil, t0))
	must(t, call("RecordAttestation", "dev-a", t0), err)
	if _, err := s.SetDeviceStatus(ctx, "dev-a", "LOST", t0); err == nil {
		t.Errorf("%s = nil, want an error", call("SetDeviceStatus", "dev-a", "LOST", t0))
	}
	dev, err := s.GetDevice(ctx, "dev-a")
	must(t, call("GetDevice", "dev-a"), err)
	if dev.Status != store.DeviceActive {
		t.Errorf("GetDevice(dev-a).Status = %q after a refused status, want %q", dev.Status, store.DeviceActive)
	}
	binds, err := s.ListBindings(ctx)
	must(t, call("ListBindings"), err)
	if len(binds) != 0 {
		t.Errorf("ListBindings() = %+v, want none after a mobile attestation", binds)
	}
}

// testDeleteCA: an uploaded CA can be deleted; a second delete, like any
// delete of an absent record, is store.ErrNotFound; others stay.
func testDeleteCA(t *testing.T, s store.Store) {
	ctx := t.Context()
	up := caRecord("up-1")
	up.Role = store.RoleUploaded
	up.KeyCiphertext = nil
	must(t, call("CreateCA", up.ID), s.CreateCA(ctx, up))
	must(t, call("CreateCA", "inter"), s.CreateCA(ctx, caRecord("inter")))

	must(t, call("DeleteCA", up.ID), s.DeleteCA(ctx, up.ID))
	_, err := s.GetCA(ctx, up.ID)
	wantErr(t, call("GetCA", up.ID)+" after delete", err, store.ErrNotFound)
	wantErr(t, call("DeleteCA", up.ID)+" again", s.DeleteCA(ctx, up.ID), store.ErrNotFound)
	list, err := s.ListCAs(ctx)
	must(t, call("ListCAs"), err)
	if len(list) != 1 || list[0].ID != "inter" {
		t.Errorf("ListCAs() after delete = %+v, want only %q", list, "inter")
	}
	// The ID is free again.
	must(t, call("CreateCA", up.ID)+" after delete", s.CreateCA(ctx, up))
}

// testIntegrationHintFields: a mobile integration's sealed managementHint
// and plain-hint switch round-trip.
func testIntegrationHintFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := integration("int-ios")
	in.Platform = store.PlatformIOS
	in.ChallengeType = ""
	in.SecretHash = nil
	in.HintCiphertext = []byte("sealed-hint")
	in.AllowPlainHint = true
	must(t, call("CreateIntegration", in.ID), s.CreateIntegration(ctx, in))
	got, err := s.GetIntegration(ctx, in.ID)
	must(t, call("GetIntegration", in.ID), err)
	wantDiff(t, call("GetIntegration", in.ID), in, got)
}

// testRecordAttestationNonce: the nonce a proof presented is consumed in
// the attestation's own write: absent, used or expired nonces fail it
// without a write; a binding refusal still spends the nonce; racing
// attestations with one nonce record exactly one.
func testRecordAttestationNonce(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, key := range []string{"n-ok", "n-refused", "n-race"} {
		must(t, call("PutOneTime", store.KindNonce, key), s.PutOneTime(ctx, store.KindNonce, oneTime(key, "", t0.Add(5*time.Minute))))
	}
	must(t, call("PutOneTime", store.KindNonce, "n-old"), s.PutOneTime(ctx, store.KindNonce, oneTime("n-old", "", t0)))

	a := attestation("dev-a", deviceCert("1"), t0)
	a.Nonce = "n-ok"
	_, _, err := s.RecordAttestation(ctx, a)
	must(t, call("RecordAttestation", "dev-a", "n-ok"), err)
	v, err := s.GetOneTime(ctx, store.KindNonce, "n-ok")
	must(t, call("GetOneTime", store.KindNonce, "n-ok"), err)
	if !v.UsedAt.Equal(t0) {
		t.Errorf("nonce n-ok after RecordAttestation: UsedAt = %v, want %v", v.UsedAt, t0)
	}

	for _, tc := range []struct {
		nonce string
		want  error
	}{{"n-ok", store.ErrUsed}, {"n-old", store.ErrExpired}, {"n-absent", store.ErrNotFound}} {
		b := attestation("dev-b", deviceCert("2"), t0)
		b.Nonce = tc.nonce
		dev, bind, err := s.RecordAttestation(ctx, b)
		wantErr(t, call("RecordAttestation", "dev-b", tc.nonce), err, tc.want)
		if dev != nil || bind != nil {
			t.Errorf("RecordAttestation(dev-b, %s) = %+v, %+v, want nothing", tc.nonce, dev, bind)
		}
	}
	if _, err := s.GetDevice(ctx, "dev-b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDevice(dev-b) after refused nonces = %v, want %v", err, store.ErrNotFound)
	}
	if _, err := s.GetBinding(ctx, deviceCert("2").SHA256); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBinding(cert 2) after refused nonces = %v, want %v", err, store.ErrNotFound)
	}

	// Bound elsewhere: refused, and the nonce is spent.
	r := attestation("dev-c", deviceCert("1"), t0)
	r.Nonce = "n-refused"
	_, _, err = s.RecordAttestation(ctx, r)
	wantErr(t, call("RecordAttestation", "dev-c", "n-refused"), err, store.ErrConflict)
	if v, err := s.GetOneTime(ctx, store.KindNonce, "n-refused"); err != nil || v.UsedAt.IsZero() {
		t.Errorf("nonce of a refused attestation = %+v, %v, want it used", v, err)
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 10 {
		wg.Go(func() {
			a := attestation(fmt.Sprintf("racer-%d", i), deviceCert(fmt.Sprintf("r%d", i)), t0)
			a.Nonce = "n-race"
			switch _, _, err := s.RecordAttestation(ctx, a); {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, store.ErrUsed):
				t.Errorf("RecordAttestation(racer %d, n-race) = %v, want nil or %v", i, err, store.ErrUsed)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("10 attestations racing with one nonce: %d recorded, want 1", wins)
	}
}

// testRecordAttestationTPMAK: the first TPM AK is pinned, a later one does
// not replace it, and a deleted device pins afresh.
func testRecordAttestationTPMAK(t *testing.T, s store.Store) {
	ctx := t.Context()
	c1 := deviceCert("ak")
	a := attestation("dev-ak", c1, t0)
	dev, _, err := s.RecordAttestation(ctx, a)
	must(t, call("RecordAttestation", "dev-ak", "no AK"), err)
	if dev.TPMAKName != "" {
		t.Fatalf("RecordAttestation without AK pinned %q", dev.TPMAKName)
	}
	for i, ak := range []string{"000BAA", "000BBB"} {
		a = attestation("dev-ak", c1, t0.Add(time.Duration(i+1)*time.Minute))
		a.TPMAKName = ak
		dev, _, err = s.RecordAttestation(ctx, a)
		must(t, call("RecordAttestation", "dev-ak", ak), err)
		if dev.TPMAKName != "000BAA" {
			t.Fatalf("RecordAttestation(AK %s) pinned %q, want the first AK 000BAA", ak, dev.TPMAKName)
		}
	}
	got, err := s.GetDevice(ctx, "dev-ak")
	must(t, call("GetDevice", "dev-ak"), err)
	if got.TPMAKName != "000BAA" {
		t.Fatalf("GetDevice(dev-ak).TPMAKName = %q, want 000BAA", got.TPMAKName)
	}
	_, err = s.SetDeviceStatus(ctx, "dev-ak", store.DeviceDeleted, t0.Add(time.Hour))
	must(t, call("SetDeviceStatus", "dev-ak", "DELETED"), err)
	a = attestation("dev-ak", deviceCert("ak2"), t0.Add(2*time.Hour))
	a.TPMAKName = "000BCC"
	dev, _, err = s.RecordAttestation(ctx, a)
	must(t, call("RecordAttestation", "dev-ak", "after delete"), err)
	if dev.TPMAKName != "000BCC" {
		t.Fatalf("RecordAttestation after delete pinned %q, want 000BCC", dev.TPMAKName)
	}
}
