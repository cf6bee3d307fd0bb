// Package auditlog turns the audit logger's records into stored audit
// events. Every part of scepca logs its audit events to one *slog.Logger
// (message = event type, attributes "target" and "outcome" plus details);
// Handler tees each record to the JSON log and queues it as an Event for an
// asynchronous batcher that appends to the event store. It also carries the
// actor of an event in the context (WithActor), makes the time-ordered
// event IDs (NewEventID) and sweeps old events (Sweeper).
//
// It imports none of scepca's other packages (STYLE.md §1): its Event has
// the fields of store.Event, and cmd adapts a store.AuditStore to Sink. It
// must never store a secret: attributes whose key names one are dropped
// (Redacted), whatever their value.
package auditlog
