package activities

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"zcloud/contract"
	"zcloud/metrics"
)

// A failed archive upload counts as a failure in the metrics, not as "ok".
func TestArchiveStreamFailureCountedAsError(t *testing.T) {
	f := newArchiveFixture(t, "STANDARD")
	f.a.Metrics = metrics.New()
	_, err := f.env.ExecuteActivity(f.a.ArchiveStream, contract.ArchiveStreamRequest{Dataset: f.ds, Cycle: "c1", Kind: "bogus"})
	if err == nil {
		t.Fatal("a bogus stream kind was archived")
	}
	if got := sends(t, f.a.Metrics, "error"); got != 1 {
		t.Errorf("zcloud_sends_total{target=archive,result=error} = %v, want 1", got)
	}
	if got := sends(t, f.a.Metrics, "ok"); got != 0 {
		t.Errorf("zcloud_sends_total{target=archive,result=ok} = %v, want 0", got)
	}
}

func sends(t *testing.T, m *metrics.Metrics, result string) float64 {
	var d dto.Metric
	if err := m.Sends.WithLabelValues("archive", result).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
