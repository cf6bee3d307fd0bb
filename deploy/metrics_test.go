package deploy

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scepca/scepca/internal/metrics"
)

// exportedMetrics returns the name of every series scepca's registry can
// export: each collector of internal/metrics is touched once so that vector
// families appear, and histograms contribute their _bucket, _sum and _count
// series. "up" is Prometheus' own per target.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "v0", "go1.26")
	m.SCEPRequest("PKIOperation", "PKCSReq", "int1", "STATIC", "FAILURE", "badRequest", "challenge_invalid")
	m.ObservePhase("sign", time.Millisecond)
	m.DynamicChallenge("minted", "")
	m.IntuneCall("validateRequest", "success", time.Millisecond)
	m.AttestVerify("MANAGED")
	m.CertificateIssued()
	m.CertificateRevoked()
	m.StoreOp("PutCertificate", "ok", time.Millisecond)
	m.Outstanding(func() float64 { return 0 })
	m.Expiring(func() float64 { return 0 })
	m.CAExpiry(map[string]func() time.Time{"root": time.Now, "intermediate": time.Now, "ra": time.Now})
	m.AuditEvents()("stored", 1)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}
