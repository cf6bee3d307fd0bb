package scep

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// authority is what the SCEP service needs from the CA.
type authority interface {
	Recipient() (*x509.Certificate, *rsa.PrivateKey)
	// Recipients is the current recipient first, then those of retired
	// intermediates (CA rotation).
	Recipients() []ca.Recipient
	Intermediate() *x509.Certificate
	Chain() []*x509.Certificate
	// Next is the staged successor CA (and RA) for GetNextCACert, nil
	// without one.
	Next() []*x509.Certificate
	Trusts(cert *x509.Certificate) bool
	Prepare(ctx context.Context, req *ca.Request) (*ca.Token, error)
	Issue(ctx context.Context, tok *ca.Token) (*x509.Certificate, *store.Certificate, error)
	// IssuerID names the issuing CA (active or retired) whose subject is
	// rawSubject; CRL returns that CA's current CRL.
	IssuerID(rawSubject []byte) (id string, ok bool)
	CRL(ctx context.Context, caID string) ([]byte, error)
}

// stores is the storage the SCEP service uses.
type stores interface {
	GetIntegration(ctx context.Context, id string) (*store.Integration, error)
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	// UpdateCertificateStatus revokes a certificate Intune never acknowledged (notify.go).
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
	store.TransactionStore
}

// Config configures a Service.
type Config struct {
	CA    authority
	Store stores
	// Validators maps a challenge type (store.ChallengeStatic, ...) to its
	// validator.
	Validators map[string]challenge.Validator
	// TransactionTTL is how long transaction records are kept for
	// idempotent retries; default 7 days (PROTOCOLS.md §1.7).
	TransactionTTL time.Duration
	// Lease bounds how long an in-flight transaction blocks a retry (which
	// gets PENDING meanwhile); default 2 minutes.
	Lease  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Audit receives certificate events the service itself causes (a
	// certificate revoked because it was never delivered); default Logger.
	Audit *slog.Logger
	// Observer receives the latency of each PKIOperation phase (metrics);
	// default none.
	Observer observer
}

// PKIOperation phases reported to the observer.
const (
	PhaseDecrypt   = "decrypt"
	PhaseChallenge = "challenge"
	PhaseSign      = "sign"
	PhaseStore     = "store"
	PhaseNotify    = "notify"
	PhaseEncrypt   = "encrypt"
)

// observer is told how long each PKIOperation phase took.
type observer interface {
	ObservePhase(phase string, d time.Duration)
}

type noObserver struct{}

func (noObserver) ObservePhase(string, time.Duration) {}

// phase reports the time since start for phase; use with defer.
func (s *Service) phase(phase string, start time.Time) {
	s.obs.ObservePhase(phase, time.Since(start))
}

// Service runs SCEP PKIOperations: decrypt, check, challenge, issue, reply.
type Service struct {
	ca         authority
	store      stores
	validators map[string]challenge.Validator
	txTTL      time.Duration
	lease      time.Duration
	now        func() time.Time
	log        *slog.Logger
	audit      *slog.Logger
	obs        observer
}

// NewService validates cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.CA == nil || cfg.Store == nil {
		return nil, errors.New("scep: CA and Store are required")
	}
	cert, key := cfg.CA.Recipient()
	if cert == nil || key == nil {
		return nil, errors.New("scep: CA has no recipient certificate")
	}
	if err := ca.CheckRecipient(cert); err != nil {
		return nil, fmt.Errorf("scep: %w", err)
	}
	s := &Service{
		ca:         cfg.CA,
		store:      cfg.Store,
		validators: cfg.Validators,
		txTTL:      cfg.TransactionTTL,
		lease:      cfg.Lease,
		now:        cfg.Now,
		log:        cfg.Logger,
		audit:      cfg.Audit,
		obs:        cfg.Observer,
	}
	if s.obs == nil {
		s.obs = noObserver{}
	}
	if s.txTTL <= 0 {
		s.txTTL = 7 * 24 * time.Hour
	}
	if s.lease <= 0 {
		s.lease = 2 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.audit == nil {
		s.audit = s.log
	}
	return s, nil
}

// PKIOperation answers one pkiMessage with a signed CertRep. It returns an
// error wrapping errUnparsable when the bytes are not a pkiMessage (the
// caller answers HTTP 400); every other problem is a signed FAILURE.
func (s *Service) PKIOperation(ctx context.Context, integ *store.Integration, body []byte) ([]byte, error) {
	msg, err := ParsePKIMessage(body)
	if err != nil {
		return nil, err
	}
	msg.recipient, msg.recipientKey = s.recipientFor(msg.Envelope)
	ev := reqlog.FromContext(ctx)
	ev.Add(slog.String(reqlog.KeyMessageType, msg.MessageType.String()), slog.String(reqlog.KeyTransactionID, msg.TransactionID))
	// Audit events of this request (issue, refuse, revoke) name the
	// integration whose endpoint was called as their actor.
	ctx = auditlog.WithActor(ctx, "scep:"+integ.ID)
	rep, err := s.handle(ctx, integ, msg)
	if err != nil {
		rep = failureReply(ev, err)
		s.auditRefusal(ctx, integ, msg, err)
	}
	ev.Add(slog.String(reqlog.KeyPKIStatus, pkiStatusName(rep.status)))
	out, err := marshalCertRep(msg, rep, msg.recipient, msg.recipientKey)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// recipientFor returns the recipient that envelope names: the current one,
// or, during a CA rotation, that of a retired intermediate a client fetched
// with GetCACert before the activation (its CertRep is then signed by that
// recipient too, the one the client knows). Without an explicit match it is
// the current one, to which cms.Decrypt applies its lone-recipient fallback.
func (s *Service) recipientFor(envelope []byte) (*x509.Certificate, *rsa.PrivateKey) {
	rs := s.ca.Recipients()
	if len(rs) > 1 && !cms.Names(envelope, rs[0].Cert) {
		for _, r := range rs[1:] {
			if cms.Names(envelope, r.Cert) {
				return r.Cert, r.Key
			}
		}
	}
	return rs[0].Cert, rs[0].Key
}

func pkiStatusName(s PKIStatus) string {
	switch s {
	case StatusSuccess:
		return "SUCCESS"
	case StatusPending:
		return "PENDING"
	}
	return "FAILURE"
}

func (s *Service) handle(ctx context.Context, integ *store.Integration, msg *PKIMessage) (reply, error) {
	if _, ok := msg.digest(); !ok {
		return reply{}, fail(BadAlg, "unsupported_digest", fmt.Errorf("digest %s", msg.DigestOID))
	}
	if err := msg.Verify(); err != nil {
		return reply{}, fail(BadMessageCheck, "bad_signature", err)
	}
	// A SUCCESS is encrypted to the signer certificate with RSA key
	// transport; refuse any other key before issuing a certificate that
	// could never be delivered.
	if _, ok := msg.SignerCert.PublicKey.(*rsa.PublicKey); !ok {
		return reply{}, fail(BadAlg, "signer_key_not_rsa", fmt.Errorf("signer key %T", msg.SignerCert.PublicKey))
	}
	if integ.Deleted() {
		return reply{}, fail(BadRequest, "integration_deleted", nil)
	}
	if !integ.Enabled {
		return reply{}, fail(BadRequest, "integration_disabled", nil)
	}
	switch msg.MessageType {
	case PKCSReq, RenewalReq:
		return s.enroll(ctx, integ, msg)
	case CertPoll:
		return s.poll(ctx, integ, msg)
	case GetCert:
		return s.getCert(ctx, integ, msg)
	case GetCRL:
		return s.getCRL(ctx, integ, msg)
	}
	return reply{}, fail(BadRequest, "unknown_message_type", fmt.Errorf("messageType %s", msg.MessageType))
}

// decrypt opens the request's envelope with the recipient key and enforces
// the integration's minimum cipher.
func (s *Service) decrypt(integ *store.Integration, msg *PKIMessage) ([]byte, cms.Params, error) {
	defer s.phase(PhaseDecrypt, time.Now())
	plain, params, err := cms.Decrypt(msg.Envelope, msg.recipient, msg.recipientKey)
	if err != nil {
		return nil, params, err
	}
	if min, ok := minStrength(integ.MinCipher); ok && params.Strength() < min {
		return nil, params, fail(BadAlg, "cipher_below_minimum", fmt.Errorf("%s below %s", params, integ.MinCipher))
	}
	return plain, params, nil
}

func (s *Service) enroll(ctx context.Context, integ *store.Integration, msg *PKIMessage) (reply, error) {
	plain, params, err := s.decrypt(integ, msg)
	if err != nil {
		return reply{}, err
	}
	reqlog.Add(ctx, slog.String(reqlog.KeyCipher, params.String()))
	csr, password, err := parseCSR(plain)
	if err != nil {
		return reply{}, fail(BadRequest, "bad_csr", err)
	}
	if err := ca.CheckCSR(csr); err != nil {
		return reply{}, err
	}
	now := s.now()
	renewal := msg.MessageType == RenewalReq
	txKey := msg.TransactionID
	if renewal {
		if err := s.checkRenewal(ctx, integ, msg.SignerCert, csr, now); err != nil {
			return reply{}, err
		}
		// A renewal is its own transaction per signing certificate: scepclient
		// reuses the PKCSReq's transactionID (a hash of the same key).
		txKey = renewalTxKey(msg)
	} else {
		reqlog.Add(ctx, slog.String(reqlog.KeyChallenge, integ.ChallengeType))
	}
	tx := &store.Transaction{
		IntegrationID: integ.ID,
		TransactionID: txKey,
		PublicKeyHash: publicKeyHash(csr.RawSubjectPublicKeyInfo),
		State:         store.TxPending,
		CreatedAt:     now,
		LeaseUntil:    now.Add(s.lease),
		ExpiresAt:     now.Add(s.txTTL),
	}
	if password != "" {
		tx.ChallengeHash = hashString(password)
	}
	if tx.Claim, err = newClaim(); err != nil {
		return reply{}, err
	}
	// A validator that must acknowledge the certificate before delivery
	// (Intune, notify.go) holds the transaction at ISSUED until it does.
	var n notifier
	if !renewal {
		n = s.notifierFor(integ)
		tx.Confirm = n != nil
	}
	claimStart := time.Now()
	existing, err := s.store.ClaimTransaction(ctx, tx, now)
	if errors.Is(err, store.ErrExists) && abandoned(existing, now) {
		s.recoverAbandoned(ctx, existing)
		existing, err = s.store.ClaimTransaction(ctx, tx, now)
	}
	s.phase(PhaseStore, claimStart)
	if errors.Is(err, store.ErrExists) {
		return s.replay(ctx, msg, params, tx, existing, n != nil)
	}
	if err != nil {
		return reply{}, err
	}
	issued := false
	defer func() {
		if !issued {
			// The attempt failed: free the transaction so a corrected retry
			// starts afresh. WithoutCancel: the client may be gone already.
			if err := s.store.ReleaseTransaction(context.WithoutCancel(ctx), integ.ID, txKey, tx.Claim); err != nil {
				s.log.WarnContext(ctx, "release transaction", "transaction_id", msg.TransactionID, "error", err)
			}
		}
	}()
	if n != nil {
		// Validate, sign and notify share one budget under the device's timeout.
		var cancel context.CancelFunc
		ctx, cancel = s.withBudget(ctx, integ)
		defer cancel()
	}
	vreq := challenge.Request{
		Integration:   integ,
		Password:      challenge.Secret(password),
		TransactionID: msg.TransactionID,
		PublicKeyHash: tx.PublicKeyHash,
		CSR:           csr,
	}
	if !renewal {
		v := s.validators[integ.ChallengeType]
		if v == nil {
			return reply{}, fmt.Errorf("scep: no validator for challenge type %q", integ.ChallengeType)
		}
		start := time.Now()
		err := v.Validate(ctx, vreq)
		s.phase(PhaseChallenge, start)
		if err != nil {
			return reply{}, err
		}
	}
	var validity time.Duration
	if integ.ValidityDays > 0 {
		validity = time.Duration(integ.ValidityDays) * 24 * time.Hour
	}
	signStart := time.Now()
	tok, err := s.ca.Prepare(ctx, &ca.Request{CSR: csr, IntegrationID: integ.ID, TransactionID: txKey, Validity: validity})
	if err != nil {
		s.notifyFailure(ctx, n, vreq, err)
		return reply{}, err
	}
	cert, rec, err := s.ca.Issue(ctx, tok)
	s.phase(PhaseSign, signStart)
	if err != nil {
		s.notifyFailure(ctx, n, vreq, err)
		return reply{}, err
	}
	s.auditIssue(ctx, msg, rec)
	if n != nil {
		// Hand the certificate out only once Intune acknowledged it.
		start := time.Now()
		err := s.deliver(ctx, n, vreq, txKey, tx.Claim, cert, rec)
		s.phase(PhaseNotify, start)
		if err != nil {
			return reply{}, err
		}
	}
	issued = true
	reqlog.Add(ctx, slog.String(reqlog.KeySerial, rec.Serial))
	return s.success(msg, params, []*x509.Certificate{cert}, nil)
}

// newClaim returns a random claim token for a transaction.
func newClaim() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// replay answers a request whose transaction is already known: the same key
// after SUCCESS gets the same certificate; an in-flight one gets PENDING, or
// FAILURE when the integration is delegated (Intune never answers PENDING).
func (s *Service) replay(ctx context.Context, msg *PKIMessage, params cms.Params, tx, existing *store.Transaction, delegated bool) (reply, error) {
	if existing == nil || !bytes.Equal(existing.PublicKeyHash, tx.PublicKeyHash) {
		return reply{}, fail(BadRequest, "transaction_key_mismatch", nil)
	}
	if existing.State != store.TxSuccess {
		reqlog.Add(ctx, slog.Bool("in_flight", true))
		if delegated {
			return reply{}, fail(BadRequest, "transaction_in_flight", nil)
		}
		return reply{status: StatusPending}, nil
	}
	if !bytes.Equal(existing.ChallengeHash, tx.ChallengeHash) {
		return reply{}, fail(BadRequest, "transaction_challenge_mismatch", nil)
	}
	return s.issuedReply(ctx, msg, params, existing.Serial)
}

func (s *Service) issuedReply(ctx context.Context, msg *PKIMessage, params cms.Params, serial string) (reply, error) {
	rec, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return reply{}, fmt.Errorf("scep: certificate of transaction: %w", err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return reply{}, fmt.Errorf("scep: stored certificate %s: %w", serial, err)
	}
	reqlog.Add(ctx, slog.String(reqlog.KeySerial, rec.Serial), slog.Bool("replayed", true))
	return s.success(msg, params, []*x509.Certificate{cert}, nil)
}

// checkRenewal authenticates a RenewalReq by the certificate that signed it
// (PROTOCOLS.md §1.7): ours, of this integration, current, not revoked or on
// hold, with the CSR's subject.
func (s *Service) checkRenewal(ctx context.Context, integ *store.Integration, signer *x509.Certificate, csr *x509.CertificateRequest, now time.Time) error {
	if !integ.Renewal {
		return fail(BadRequest, "renewal_disabled", nil)
	}
	if !s.ca.Trusts(signer) {
		return fail(BadRequest, "renewal_untrusted_signer", nil)
	}
	rec, err := s.store.GetCertificate(ctx, ca.SerialString(signer.SerialNumber))
	if errors.Is(err, store.ErrNotFound) {
		return fail(BadRequest, "renewal_unknown_certificate", err)
	}
	if err != nil {
		return err
	}
	switch {
	case rec.IntegrationID != integ.ID:
		return fail(BadRequest, "renewal_other_integration", nil)
	case rec.Status != store.CertIssued:
		return fail(BadRequest, "renewal_certificate_"+rec.Status, nil)
	case now.Before(signer.NotBefore) || now.After(signer.NotAfter):
		return fail(BadRequest, "renewal_certificate_expired", nil)
	case !bytes.Equal(signer.RawSubject, csr.RawSubject):
		return fail(BadRequest, "renewal_subject_mismatch", nil)
	}
	return nil
}

// renewalTxKey is the transaction key of a RenewalReq: one transaction per
// signing certificate and transactionID.
func renewalTxKey(msg *PKIMessage) string {
	return "renewal:" + ca.SerialString(msg.SignerCert.SerialNumber) + ":" + msg.TransactionID
}

// poll answers CertPoll (GetCertInitial) for this message's transaction.
func (s *Service) poll(ctx context.Context, integ *store.Integration, msg *PKIMessage) (reply, error) {
	_, params, err := s.decrypt(integ, msg)
	if err != nil {
		return reply{}, err
	}
	// A poll signed by one of our certificates follows a RenewalReq (signed
	// the same way), whose transaction is keyed apart from the PKCSReq that
	// may share its transactionID.
	var tx *store.Transaction
	err = store.ErrNotFound
	if s.ca.Trusts(msg.SignerCert) {
		tx, err = s.store.GetTransaction(ctx, integ.ID, renewalTxKey(msg))
	}
	if errors.Is(err, store.ErrNotFound) {
		tx, err = s.store.GetTransaction(ctx, integ.ID, msg.TransactionID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return reply{}, fail(BadCertID, "unknown_transaction", nil)
	}
	if err != nil {
		return reply{}, err
	}
	if tx.State != store.TxSuccess {
		if s.notifierFor(integ) != nil {
			return reply{}, fail(BadRequest, "transaction_in_flight", nil)
		}
		return reply{status: StatusPending}, nil
	}
	return s.issuedReply(ctx, msg, params, tx.Serial)
}

// getCert answers GetCert: a certificate this integration issued, by issuer
// and serial.
func (s *Service) getCert(ctx context.Context, integ *store.Integration, msg *PKIMessage) (reply, error) {
	ias, _, params, err := s.issuerAndSerial(integ, msg)
	if err != nil {
		return reply{}, err
	}
	serial := ca.SerialString(ias.Serial)
	rec, err := s.store.GetCertificate(ctx, serial)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.IntegrationID != integ.ID) {
		return reply{}, fail(BadCertID, "unknown_certificate", nil)
	}
	if err != nil {
		return reply{}, err
	}
	return s.issuedReply(ctx, msg, params, rec.Serial)
}

// getCRL answers GetCRL with the current CRL of the intermediate the
// request names: the active one, or one retired by a rotation.
func (s *Service) getCRL(ctx context.Context, integ *store.Integration, msg *PKIMessage) (reply, error) {
	_, caID, params, err := s.issuerAndSerial(integ, msg)
	if err != nil {
		return reply{}, err
	}
	crl, err := s.ca.CRL(ctx, caID)
	if err != nil {
		return reply{}, err
	}
	return s.success(msg, params, nil, [][]byte{crl})
}

// issuerAndSerial decrypts the content of a GetCert or GetCRL request and
// returns it with the store ID of the issuing CA it names.
func (s *Service) issuerAndSerial(integ *store.Integration, msg *PKIMessage) (*issuerAndSerial, string, cms.Params, error) {
	plain, params, err := s.decrypt(integ, msg)
	if err != nil {
		return nil, "", params, err
	}
	ias, err := parseIssuerAndSerial(plain)
	if err != nil {
		return nil, "", params, fail(BadRequest, "bad_issuer_and_serial", err)
	}
	caID, ok := s.ca.IssuerID(ias.Issuer.FullBytes)
	if !ok {
		return nil, "", params, fail(BadCertID, "unknown_issuer", nil)
	}
	return ias, caID, params, nil
}

// success wraps certificates and CRLs in a degenerate SignedData encrypted
// to the requester's signer certificate with the request's own algorithms
// (never a downgrade; PROTOCOLS.md §1.6).
func (s *Service) success(msg *PKIMessage, params cms.Params, certs []*x509.Certificate, crls [][]byte) (reply, error) {
	inner, err := degenerate(certs, crls)
	if err != nil {
		return reply{}, err
	}
	start := time.Now()
	env, err := cms.Encrypt(inner, msg.SignerCert, params)
	s.phase(PhaseEncrypt, start)
	if err != nil {
		return reply{}, fmt.Errorf("scep: encrypt reply: %w", err)
	}
	return reply{status: StatusSuccess, content: env}, nil
}
