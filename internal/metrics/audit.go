package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuditEvents registers scepca_audit_events_total{result} and returns the
// function that counts into it, for the audit batcher's Observe: result is
// "stored", "failed" (the store refused a batch after retries) or
// "dropped" (the queue stayed full). The last two mean events that exist
// only as audit log lines.
func (m *Metrics) AuditEvents() func(result string, n int) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "audit", Name: "events_total",
		Help: "Audit events by result: stored, failed (the store refused them after retries), dropped (the queue stayed full).",
	}, []string{"result"})
	m.reg.MustRegister(c)
	for _, r := range []string{"stored", "failed", "dropped"} {
		c.WithLabelValues(r)
	}
	return func(result string, n int) { c.WithLabelValues(result).Add(float64(n)) }
}
