package scep

import (
	"context"

	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Audit event types of the SCEP service (docs/api.md, "Event types").
const (
	// EventIssue: a certificate was signed and recorded (target: serial).
	EventIssue = "certificate.issue"
	// EventRefuse: a PKIOperation was answered FAILURE (target: the
	// integration).
	EventRefuse = "certificate.refuse"
)

// auditIssue records the issuance of rec. It is logged as soon as the
// certificate is signed and recorded, before any delivery step (Intune's
// success notification): a certificate that is then withdrawn gets its own
// certificate.revoke.
func (s *Service) auditIssue(ctx context.Context, msg *PKIMessage, rec *store.Certificate) {
	s.audit.InfoContext(ctx, EventIssue,
		"target", rec.Serial,
		reqlog.KeyIntegrationID, rec.IntegrationID,
		reqlog.KeyTransactionID, msg.TransactionID,
		reqlog.KeyMessageType, msg.MessageType.String(),
		"subject", rec.Subject,
		"ca_id", rec.CAID,
		"not_after", rec.NotAfter,
		"outcome", "success")
}

// auditRefusal records a PKIOperation answered FAILURE: the failInfo the
// client got and the stable reason class of classify. Never the challenge,
// never the error text (it may quote client input).
func (s *Service) auditRefusal(ctx context.Context, integ *store.Integration, msg *PKIMessage, err error) {
	info, reason := classify(err)
	s.audit.WarnContext(ctx, EventRefuse,
		"target", integ.ID,
		reqlog.KeyIntegrationID, integ.ID,
		reqlog.KeyTransactionID, msg.TransactionID,
		reqlog.KeyMessageType, msg.MessageType.String(),
		reqlog.KeyFailInfo, info.String(),
		reqlog.KeyReason, reason,
		"outcome", "failure")
}
