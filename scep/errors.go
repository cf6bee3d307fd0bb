package scep

import (
	"errors"
	"log/slog"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/reqlog"
)

// failError is a refusal with the failInfo the client gets and a short,
// stable reason for logs and metrics. Its Error text never reaches clients.
type failError struct {
	info   FailInfo
	reason string
	err    error
}

func (e *failError) Error() string {
	if e.err == nil {
		return "scep: " + e.reason
	}
	return "scep: " + e.reason + ": " + e.err.Error()
}

func (e *failError) Unwrap() error { return e.err }

func fail(info FailInfo, reason string, err error) error {
	return &failError{info: info, reason: reason, err: err}
}

// classify maps any error from the enrollment path to the failInfo the
// client sees and a reason for the log. This is the one place where errors
// become SCEP failures (PROTOCOLS.md §1.5): internal errors become
// badRequest with reason "internal"; details stay in the log.
func classify(err error) (FailInfo, string) {
	if fe, ok := errors.AsType[*failError](err); ok {
		return fe.info, fe.reason
	}
	switch {
	case errors.Is(err, cms.ErrUnsupportedAlgorithm):
		return BadAlg, "unsupported_algorithm"
	case errors.Is(err, cms.ErrDecrypt):
		return BadMessageCheck, "envelope_decrypt"
	case errors.Is(err, challenge.ErrUsed):
		return BadRequest, "challenge_used"
	case errors.Is(err, challenge.ErrExpired):
		return BadRequest, "challenge_expired"
	case errors.Is(err, challenge.ErrInvalid):
		return BadRequest, "challenge_invalid"
	case errors.Is(err, challenge.ErrUnavailable):
		return BadRequest, "challenge_unavailable"
	case errors.Is(err, ca.ErrPolicy):
		return BadRequest, "csr_policy"
	}
	return BadRequest, "internal"
}

// failureReply turns err into a FAILURE reply and records why on the
// request's wide event.
func failureReply(ev *reqlog.Event, err error) reply {
	info, reason := classify(err)
	ev.Add(slog.String(reqlog.KeyFailInfo, info.String()), slog.String("fail_reason", reason), slog.String(reqlog.KeyError, err.Error()))
	return reply{status: StatusFailure, failInfo: info}
}
