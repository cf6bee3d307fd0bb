// Package metrics defines scepca's Prometheus collectors. It imports none of
// scepca's other packages: cmd registers a Metrics on a registry it owns
// (never the global default) and adapts each package's own seam (an
// observer interface or an Observe func) to the methods here.
//
// Every label value is bounded: operations, message types, outcomes,
// failInfo names and reasons are fixed code constants; integration IDs are
// admin-created (a handful per deployment) and unknown IDs are recorded as
// "unknown". No label carries a device, a serial or a transaction.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "scepca"

// Metrics holds the collectors the request paths update.
type Metrics struct {
	reg           prometheus.Registerer
	scepRequests  *prometheus.CounterVec
	phaseSeconds  *prometheus.HistogramVec
	dynamic       *prometheus.CounterVec
	intuneCalls   *prometheus.CounterVec
	intuneSeconds *prometheus.HistogramVec
	attestVerify  *prometheus.CounterVec
	issued        prometheus.Counter
	revoked       prometheus.Counter
	storeSeconds  *prometheus.HistogramVec
	storeOps      *prometheus.CounterVec
}

// New creates the collectors and registers them, with build info and the
// Go and process collectors, on reg.
func New(reg prometheus.Registerer, version, goVersion string) *Metrics {
	m := &Metrics{
		reg: reg,
		scepRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "scep", Name: "requests_total",
			Help: "SCEP requests by operation, message type, integration, challenge type, outcome (SUCCESS, PENDING, FAILURE, ok, error), failInfo and failure reason.",
		}, []string{"operation", "message_type", "integration", "challenge_type", "outcome", "fail_info", "reason"}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "scep", Name: "phase_seconds",
			Help:    "Latency of each PKIOperation phase: decrypt, challenge, sign, store, notify, encrypt.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25},
		}, []string{"phase"}),
		dynamic: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dynamic_challenges_total",
			Help: "Dynamic challenges minted, consumed, expired and rejected (reason set for rejections).",
		}, []string{"event", "reason"}),
		intuneCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "intune", Name: "calls_total",
			Help: "Calls to Intune's SCEP API by action and result (success, failure: Intune answered with an error, not_sent: token or discovery failed first).",
		}, []string{"action", "result"}),
		intuneSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "intune", Name: "call_seconds",
			Help:    "Latency of calls to Intune's SCEP API by action, token and discovery included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 25},
		}, []string{"action"}),
		attestVerify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "attest", Name: "verify_total",
			Help: "Attestation verifications by reason (MANAGED or a refusal reason; ERROR when undecided).",
		}, []string{"reason"}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "certificates_issued_total",
			Help: "Certificates signed and recorded.",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "certificates_revoked_total",
			Help: "Certificates revoked.",
		}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "store", Name: "op_seconds",
			Help:    "Latency of each storage operation by method (op).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "ops_total",
			Help: "Storage operations by method (op) and result (ok, not_found, exists, expired, used, conflict, canceled, error).",
		}, []string{"op", "result"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; labels carry the version and the Go version.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, goVersion).Set(1)
	reg.MustRegister(m.scepRequests, m.phaseSeconds, m.dynamic, m.intuneCalls, m.intuneSeconds,
		m.attestVerify, m.issued, m.revoked, m.storeSeconds, m.storeOps, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SCEPRequest counts one SCEP request.
func (m *Metrics) SCEPRequest(operation, messageType, integration, challengeType, outcome, failInfo, reason string) {
	m.scepRequests.WithLabelValues(operation, messageType, integration, challengeType, outcome, failInfo, reason).Inc()
}

// ObservePhase records one PKIOperation phase's duration.
func (m *Metrics) ObservePhase(phase string, d time.Duration) {
	m.phaseSeconds.WithLabelValues(phase).Observe(d.Seconds())
}

// DynamicChallenge counts one dynamic challenge event.
func (m *Metrics) DynamicChallenge(event, reason string) {
	m.dynamic.WithLabelValues(event, reason).Inc()
}

// IntuneCall records one call to Intune.
func (m *Metrics) IntuneCall(action, result string, d time.Duration) {
	m.intuneCalls.WithLabelValues(action, result).Inc()
	m.intuneSeconds.WithLabelValues(action).Observe(d.Seconds())
}

// AttestVerify counts one attestation verification.
func (m *Metrics) AttestVerify(reason string) {
	m.attestVerify.WithLabelValues(reason).Inc()
}

// CertificateIssued counts one issued certificate.
func (m *Metrics) CertificateIssued() { m.issued.Inc() }

// CertificateRevoked counts one revoked certificate.
func (m *Metrics) CertificateRevoked() { m.revoked.Inc() }

// StoreOp records one storage operation: op is a store method name,
// result a fixed result class.
func (m *Metrics) StoreOp(op, result string, d time.Duration) {
	m.storeSeconds.WithLabelValues(op).Observe(d.Seconds())
	m.storeOps.WithLabelValues(op, result).Inc()
}

// Expiring registers scepca_certificates_expiring, computed by count at
// each scrape (count may cache).
func (m *Metrics) Expiring(count func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "certificates_expiring",
		Help: "Issued certificates, neither revoked nor on hold, that expire within 30 days.",
	}, count))
}

// Outstanding registers scepca_dynamic_challenges_outstanding, computed by
// count at each scrape.
func (m *Metrics) Outstanding(count func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "dynamic_challenges_outstanding",
		Help: "Unused, unexpired dynamic challenges across integrations.",
	}, count))
}

// CAExpiry registers scepca_ca_cert_expiry_seconds{role}: seconds until
// each role's certificate (as returned by notAfter at scrape time) expires.
func (m *Metrics) CAExpiry(notAfter map[string]func() time.Time) {
	for role, f := range notAfter {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "ca", Name: "cert_expiry_seconds",
			Help:        "Seconds until the CA certificate of this role (intermediate, ra) expires.",
			ConstLabels: prometheus.Labels{"role": role},
		}, func() float64 { return time.Until(f()).Seconds() }))
	}
}
