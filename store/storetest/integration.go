package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func byIntegrationID(a, b *store.Integration) int { return strings.Compare(a.ID, b.ID) }

func byCAID(a, b *store.CA) int { return strings.Compare(a.ID, b.ID) }

func testIntegrationCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()

	list, err := s.ListIntegrations(ctx)
	must(t, call("ListIntegrations"), err)
	if len(list) != 0 {
		t.Errorf("ListIntegrations() = %d integrations, want 0 in an empty store", len(list))
	}

	in := integration("int-1")
	must(t, call("CreateIntegration", in.ID), s.CreateIntegration(ctx, in))
	want := integration("int-1")
	in.Name = "changed by the caller after create" // the store must not keep the caller's record

	got, err := s.GetIntegration(ctx, "int-1")
	must(t, call("GetIntegration", "int-1"), err)
	wantDiff(t, call("GetIntegration", "int-1"), want, got)
	got.Name = "changed by the caller after get" // nor hand out its own
	got, err = s.GetIntegration(ctx, "int-1")
	must(t, call("GetIntegration", "int-1"), err)
	wantDiff(t, call("GetIntegration", "int-1")+" after mutating an earlier result", want, got)

	dup := integration("int-1")
	dup.Name = "duplicate"
	wantErr(t, call("CreateIntegration", dup.ID)+" again", s.CreateIntegration(ctx, dup), store.ErrExists)
	got, err = s.GetIntegration(ctx, "int-1")
	must(t, call("GetIntegration", "int-1"), err)
	wantDiff(t, call("GetIntegration", "int-1")+" after a refused duplicate", want, got)

	upd := integration("int-1")
	upd.Name = "renamed"
	upd.Enabled = false
	upd.SecretHash = nil
	upd.Renewal = false
	upd.UpdatedAt = t0.Add(time.Hour)
	must(t, call("UpdateIntegration", upd.ID), s.UpdateIntegration(ctx, upd))
	got, err = s.GetIntegration(ctx, "int-1")
	must(t, call("GetIntegration", "int-1"), err)
	wantDiff(t, call("GetIntegration", "int-1")+" after update", upd, got)

	absent := integration("int-absent")
	wantErr(t, call("UpdateIntegration", absent.ID), s.UpdateIntegration(ctx, absent), store.ErrNotFound)
	_, err = s.GetIntegration(ctx, absent.ID)
	wantErr(t, call("GetIntegration", absent.ID)+" after a refused update", err, store.ErrNotFound)

	in2 := integration("int-2")
	in2.Platform = store.PlatformIOS
	in2.ChallengeType = ""
	must(t, call("CreateIntegration", in2.ID), s.CreateIntegration(ctx, in2))
	list, err = s.ListIntegrations(ctx)
	must(t, call("ListIntegrations"), err)
	slices.SortFunc(list, byIntegrationID)
	wantDiff(t, call("ListIntegrations"), []*store.Integration{upd, in2}, list)

	must(t, call("DeleteIntegration", "int-1"), s.DeleteIntegration(ctx, "int-1"))
	_, err = s.GetIntegration(ctx, "int-1")
	wantErr(t, call("GetIntegration", "int-1")+" after delete", err, store.ErrNotFound)
	wantErr(t, call("DeleteIntegration", "int-1")+" again", s.DeleteIntegration(ctx, "int-1"), store.ErrNotFound)
	list, err = s.ListIntegrations(ctx)
	must(t, call("ListIntegrations"), err)
	wantDiff(t, call("ListIntegrations")+" after delete", []*store.Integration{in2}, list)

	// A deleted ID may be created again.
	must(t, call("CreateIntegration", "int-1")+" after delete", s.CreateIntegration(ctx, integration("int-1")))
}

func testCACRUD(t *testing.T, s store.Store) {
	ctx := t.Context()

	list, err := s.ListCAs(ctx)
	must(t, call("ListCAs"), err)
	if len(list) != 0 {
		t.Errorf("ListCAs() = %d CAs, want 0 in an empty store", len(list))
	}

	root := caRecord("root")
	root.Role = store.RoleRoot
	must(t, call("CreateCA", root.ID), s.CreateCA(ctx, root))
	want := caRecord("root")
	want.Role = store.RoleRoot
	root.KeyCiphertext[0] ^= 0xff // the store must not alias the caller's bytes

	got, err := s.GetCA(ctx, "root")
	must(t, call("GetCA", "root"), err)
	wantDiff(t, call("GetCA", "root"), want, got)

	dup := caRecord("root")
	dup.Subject = "CN=duplicate"
	wantErr(t, call("CreateCA", dup.ID)+" again", s.CreateCA(ctx, dup), store.ErrExists)
	got, err = s.GetCA(ctx, "root")
	must(t, call("GetCA", "root"), err)
	wantDiff(t, call("GetCA", "root")+" after a refused duplicate", want, got)

	// The root's key goes offline after export: the update drops it.
	exported := caRecord("root")
	exported.Role = store.RoleRoot
	exported.KeyCiphertext = nil
	exported.Active = false
	must(t, call("UpdateCA", exported.ID), s.UpdateCA(ctx, exported))
	got, err = s.GetCA(ctx, "root")
	must(t, call("GetCA", "root"), err)
	wantDiff(t, call("GetCA", "root")+" after update", exported, got)
	if len(got.KeyCiphertext) != 0 {
		t.Errorf("GetCA(%q).KeyCiphertext = %x, want empty after an update without a key", "root", got.KeyCiphertext)
	}

	wantErr(t, call("UpdateCA", "ca-absent"), s.UpdateCA(ctx, caRecord("ca-absent")), store.ErrNotFound)
	_, err = s.GetCA(ctx, "ca-absent")
	wantErr(t, call("GetCA", "ca-absent")+" after a refused update", err, store.ErrNotFound)

	inter := caRecord("intermediate")
	ra := caRecord("ra")
	ra.Role = store.RoleRA
	must(t, call("CreateCA", inter.ID), s.CreateCA(ctx, inter))
	must(t, call("CreateCA", ra.ID), s.CreateCA(ctx, ra))
	list, err = s.ListCAs(ctx)
	must(t, call("ListCAs"), err)
	slices.SortFunc(list, byCAID)
	wantDiff(t, call("ListCAs"), []*store.CA{inter, ra, exported}, list)

	// Rotation moves an intermediate through NEXT, ACTIVE and RETIRED.
	next := caRecord("next")
	next.Active, next.State = false, store.CAStateNext
	must(t, call("CreateCA", next.ID), s.CreateCA(ctx, next))
	got, err = s.GetCA(ctx, "next")
	must(t, call("GetCA", "next"), err)
	wantDiff(t, call("GetCA", "next"), next, got)
	activated := caRecord("next")
	activated.Active, activated.State = true, store.CAStateActive
	must(t, call("UpdateCA", "next"), s.UpdateCA(ctx, activated))
	got, err = s.GetCA(ctx, "next")
	must(t, call("GetCA", "next"), err)
	wantDiff(t, call("GetCA", "next")+" after activation", activated, got)
}
