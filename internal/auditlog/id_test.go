package auditlog_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
)

func TestNewEventID(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{
		time.Unix(0, 1),
		base,
		base.Add(time.Nanosecond),
		base.Add(time.Second),
		base.AddDate(400, 0, 0),
	}
	var ids []string
	for _, tm := range times {
		id := auditlog.NewEventID(tm)
		if len(id) != 25 || !auditlog.ValidEventID(id) {
			t.Fatalf("NewEventID(%v) = %q, want 16 hex digits, '-', 8 hex digits", tm, id)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("IDs of increasing times %v do not sort in time order", ids)
	}
	seen := map[string]bool{}
	for range 10000 {
		id := auditlog.NewEventID(base)
		if seen[id] {
			t.Fatalf("NewEventID(same time) repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidEventID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "0187b1a2c3d4e5f6", "0187b1a2c3d4e5f6-", "0187B1A2C3D4E5F6-0a1b2c3d", "0187b1a2c3d4e5f6-0a1b2c3", "0187b1a2c3d4e5f6-0a1b2c3d ", "../../etc"} {
		if auditlog.ValidEventID(id) {
			t.Errorf("ValidEventID(%q) = true, want false", id)
		}
	}
	if id := "0187b1a2c3d4e5f6-0a1b2c3d"; !auditlog.ValidEventID(id) {
		t.Errorf("ValidEventID(%q) = false, want true", id)
	}
}

func TestActor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if got := auditlog.ActorFrom(ctx); got != auditlog.ActorSystem {
		t.Errorf("ActorFrom(empty) = %q, want %q", got, auditlog.ActorSystem)
	}
	ctx = auditlog.WithActor(ctx, "token:abc")
	if got := auditlog.ActorFrom(ctx); got != "token:abc" {
		t.Errorf("ActorFrom(WithActor(token:abc)) = %q", got)
	}
	if got := auditlog.ActorFrom(auditlog.WithActor(ctx, "")); got != "token:abc" {
		t.Errorf("WithActor(\"\") replaced the actor: %q", got)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"secretKey": true, "secret_key": true, "password": true, "client_secret": true, "managementHint": true,
		"token": true, "Authorization-Token": true, "private_key": true, "kek": true, "intune.clientSecret": true,
		"credentials": true, "target": false, "platform": false, "challenge": false, "client_id": false,
		"transaction_id": false, "subject": false, "serial": false,
	} {
		if got := auditlog.Redacted(key); got != want {
			t.Errorf("Redacted(%q) = %v, want %v", key, got, want)
		}
	}
}
