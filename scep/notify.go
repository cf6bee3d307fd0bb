package scep

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Enrollment with a validator that must be told the outcome: Intune
// delegation (PROTOCOLS.md §3.7). The order for one PKCSReq is validate →
// sign (recorded, transaction ISSUED, not delivered) → successNotification →
// transaction SUCCESS → CertRep SUCCESS. A certificate Intune did not
// acknowledge is revoked and never returned, and the transaction is
// released so a retry starts again at validateRequest.

// notifier is a validator that must acknowledge a certificate before it is
// delivered, and hears of our own failures after it accepted a challenge.
type notifier interface {
	NotifySuccess(ctx context.Context, req challenge.Request, cert *x509.Certificate) error
	NotifyFailure(ctx context.Context, req challenge.Request, hResult int64, description string) error
}

// budgeter bounds a notifier's whole chain (validate, sign, notify), so the
// answer reaches the device before it gives up.
type budgeter interface {
	Budget() time.Duration
}

// failureNotification hResults (PROTOCOLS.md §3.5): customer-defined
// MS-ERREF codes.
const (
	hResultInternal     int64 = 0x20000001
	hResultFailInfoBase int64 = 0x20000100
)

// reasonCessationOfOperation is the CRL reason of a certificate that was
// signed but never delivered (RFC 5280, Section 5.3.1).
const reasonCessationOfOperation = 5

// undeliveredTimeout bounds recording a revocation that must happen even
// when the request is gone.
const undeliveredTimeout = 30 * time.Second

// notifierFor returns integ's validator when it must be notified.
func (s *Service) notifierFor(integ *store.Integration) notifier {
	n, _ := s.validators[integ.ChallengeType].(notifier)
	return n
}

// withBudget bounds ctx by the validator's budget, if it declares one.
func (s *Service) withBudget(ctx context.Context, integ *store.Integration) (context.Context, context.CancelFunc) {
	if b, ok := s.validators[integ.ChallengeType].(budgeter); ok && b.Budget() > 0 {
		return context.WithTimeout(ctx, b.Budget())
	}
	return ctx, func() {}
}

// deliver asks n to acknowledge cert, then marks the transaction SUCCESS.
// If either fails, the certificate is revoked as never delivered and the
// client gets FAILURE badRequest.
func (s *Service) deliver(ctx context.Context, n notifier, req challenge.Request, txKey, claim string, cert *x509.Certificate, rec *store.Certificate) error {
	if err := n.NotifySuccess(ctx, req, cert); err != nil {
		s.revokeUndelivered(ctx, rec, req.TransactionID, "successNotification failed", err)
		return fail(BadRequest, "notification_failed", err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undeliveredTimeout)
	defer cancel()
	if err := s.store.ConfirmTransaction(rctx, req.Integration.ID, txKey, claim); err != nil {
		err = fmt.Errorf("scep: confirm transaction: %w", err)
		s.revokeUndelivered(ctx, rec, req.TransactionID, "delivery not recorded", err)
		s.notifyFailure(ctx, n, req, err)
		return err
	}
	return nil
}

// notifyFailure tells n (when set) that we failed after it accepted the
// challenge: policy, signing or storage. Best effort: the outcome is only
// logged.
func (s *Service) notifyFailure(ctx context.Context, n notifier, req challenge.Request, cause error) {
	if n == nil {
		return
	}
	info, reason := classify(cause)
	h := hResultInternal
	if reason != "internal" {
		if v, err := strconv.Atoi(string(info)); err == nil {
			h = hResultFailInfoBase + int64(v)
		}
	}
	desc := "scepca could not issue the certificate (" + reason + "): " + cause.Error()
	if err := n.NotifyFailure(ctx, req, h, desc); err != nil {
		s.log.WarnContext(ctx, "failure notification not delivered", reqlog.KeyIntegrationID, req.Integration.ID, reqlog.KeyTransactionID, req.TransactionID, reqlog.KeyError, err)
	}
}

// revokeUndelivered revokes a signed certificate the client never got
// (reason cessationOfOperation) and audits it. It runs even when the
// request is gone: the signature exists, so its record must say it is dead.
func (s *Service) revokeUndelivered(ctx context.Context, rec *store.Certificate, transactionID, why string, cause error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undeliveredTimeout)
	defer cancel()
	err := s.store.UpdateCertificateStatus(rctx, rec.Serial, store.CertRevoked, s.now().UTC(), reasonCessationOfOperation)
	if errors.Is(err, store.ErrConflict) {
		err = nil // revoked already, by someone else: the record says it is dead
	}
	attrs := []any{
		"target", rec.Serial,
		reqlog.KeyIntegrationID, rec.IntegrationID,
		reqlog.KeyTransactionID, transactionID,
		"reason", "cessationOfOperation",
		"detail", "never delivered: " + why,
		"cause", cause.Error(),
	}
	if err != nil {
		s.audit.ErrorContext(ctx, "certificate.revoke", append(attrs, "outcome", "failure", reqlog.KeyError, err)...)
		return
	}
	s.audit.WarnContext(ctx, "certificate.revoke", append(attrs, "outcome", "success")...)
	reqlog.Add(ctx, slog.Bool("revoked_undelivered", true))
}

// abandoned reports whether an existing transaction was left ISSUED by a
// claimant whose lease ran out (it crashed between signing and
// acknowledgement).
func abandoned(tx *store.Transaction, now time.Time) bool {
	return tx != nil && tx.State == store.TxIssued && !tx.LeaseUntil.After(now)
}

// recoverAbandoned revokes an abandoned transaction's certificate, which
// was never delivered, and releases the transaction so this request can
// start again at validation.
func (s *Service) recoverAbandoned(ctx context.Context, tx *store.Transaction) {
	if tx.Serial != "" {
		s.revokeUndelivered(ctx, &store.Certificate{Serial: tx.Serial, IntegrationID: tx.IntegrationID}, tx.TransactionID, "claimant lost before acknowledgement", fmt.Errorf("lease ended %v", tx.LeaseUntil))
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undeliveredTimeout)
	defer cancel()
	if err := s.store.ReleaseTransaction(rctx, tx.IntegrationID, tx.TransactionID, tx.Claim); err != nil {
		s.log.WarnContext(ctx, "release abandoned transaction", reqlog.KeyTransactionID, tx.TransactionID, reqlog.KeyError, err)
	}
}
