package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Plan is what Bench runs against each target at each level.
type Plan struct {
	// Levels are the concurrency levels, in order.
	Levels []int
	// Requests is how many requests each timed phase has prepared.
	Requests int
	// Duration, when > 0, ends a timed phase early once it has passed.
	Duration time.Duration
	// Warmup is how many untimed requests precede each timed phase
	// (default: the level, so every worker's connection is open).
	Warmup int
	// RunID makes this run's subjects unique on a server that keeps them.
	RunID string
	// Timed, when set, is called as each timed phase starts; the function
	// it returns is called as the phase ends (e.g. to profile only the
	// timed phases, not the preparation and verification around them).
	Timed func(server string, concurrency int) (end func())
}

// Bench runs p against every target: for each level, each target in turn
// gets its requests prepared (untimed), a warm-up of which at least one
// reply must verify (a wrong challenge stops the run there), and a timed
// Run. Interleaving targets per level exposes them
// alike to drift on the machine. Progress lines go to progress.
func Bench(ctx context.Context, targets []Target, ids []Identity, p Plan, progress io.Writer) ([]*Result, error) {
	if p.Requests <= 0 {
		return nil, fmt.Errorf("loadgen: requests %d must be positive", p.Requests)
	}
	if p.RunID == "" {
		p.RunID = RunID()
	}
	var results []*Result
	for _, level := range p.Levels {
		for _, t := range targets {
			warm := p.Warmup
			if warm <= 0 {
				warm = level
			}
			fmt.Fprintf(progress, "%s, concurrency %d: preparing %d requests\n", t.Name, level, warm+p.Requests)
			reqs, err := Prepare(ctx, t, ids, warm+p.Requests, fmt.Sprintf("bench-%s-c%d", p.RunID, level))
			if err != nil {
				return results, err
			}
			w, err := Run(ctx, t, reqs[:warm], level, 0)
			if err != nil {
				return results, err
			}
			if w.Succeeded == 0 {
				return results, fmt.Errorf("loadgen: %s: every warm-up request failed: %s", t.Name, strings.Join(w.Errors, "; "))
			}
			end := func() {}
			if p.Timed != nil {
				end = p.Timed(t.Name, level)
			}
			r, err := run(ctx, t, reqs[warm:], level, p.Duration, end)
			if err != nil {
				return results, err
			}
			fmt.Fprintf(progress, "%s, concurrency %d: %.1f enroll/s, p50 %v, p99 %v, %d failed\n", t.Name, level, r.Rate, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Failed)
			results = append(results, r)
		}
	}
	return results, nil
}

// ParseLevels parses a comma-separated list of positive concurrency levels
// such as "1,4,16".
func ParseLevels(s string) ([]int, error) {
	var levels []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("loadgen: concurrency %q: want positive integers separated by commas", f)
		}
		levels = append(levels, n)
	}
	if len(levels) == 0 {
		return nil, errors.New("loadgen: no concurrency level")
	}
	return levels, nil
}
