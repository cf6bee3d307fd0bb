package auditlog_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
)

type sweepRecorder struct {
	mu      sync.Mutex
	cutoffs []time.Time
	fail    bool
}

func (s *sweepRecorder) SweepEvents(_ context.Context, cutoff time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutoffs = append(s.cutoffs, cutoff)
	if s.fail {
		return 0, errors.New("store down")
	}
	return 2, nil
}

func TestSweeper(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &sweepRecorder{fail: true}
		s, err := auditlog.NewSweeper(auditlog.SweeperConfig{Store: rec, Retention: 400 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.cutoffs) != 3 {
			t.Fatalf("%d sweeps in 2h, want 3 (at start, then hourly; a failure does not stop the loop)", len(rec.cutoffs))
		}
		for i, c := range rec.cutoffs {
			want := start.Add(time.Duration(i) * time.Hour).Add(-400 * 24 * time.Hour)
			if !c.Equal(want) {
				t.Errorf("sweep %d cutoff = %v, want %v", i, c, want)
			}
		}
	})
}

func TestNewSweeper(t *testing.T) {
	t.Parallel()
	if _, err := auditlog.NewSweeper(auditlog.SweeperConfig{Store: &sweepRecorder{}}); err == nil {
		t.Error("NewSweeper(no retention) = nil error, want one")
	}
	if _, err := auditlog.NewSweeper(auditlog.SweeperConfig{Retention: time.Hour}); err == nil {
		t.Error("NewSweeper(no store) = nil error, want one")
	}
}
