package auditlog

import "context"

// ActorSystem is the actor of an event no caller is known for: background
// loops, start-up.
const ActorSystem = "system"

type actorKey struct{}

// WithActor returns a context whose audit events name actor as their cause:
// "token:<id>" or "admin-token" (admin API), "scep:<integrationID>" (an
// enrollment). An empty actor leaves ctx unchanged.
func WithActor(ctx context.Context, actor string) context.Context {
	if actor == "" {
		return ctx
	}
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set by WithActor, or ActorSystem.
func ActorFrom(ctx context.Context) string {
	if ctx != nil {
		if a, ok := ctx.Value(actorKey{}).(string); ok {
			return a
		}
	}
	return ActorSystem
}
