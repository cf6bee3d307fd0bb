package challenge

import (
	"sync"
	"time"
)

// ThrottleConfig bounds failed logins per source. Zero fields take the
// defaults: 10 failures within 1 minute block the source for 5 minutes.
type ThrottleConfig struct {
	Failures int
	Window   time.Duration
	Block    time.Duration
	// MaxSources caps the sources tracked (memory bound); default 10000.
	MaxSources int
}

// Throttle counts failed logins per source (an IP address) and blocks a
// source that fails too often, without affecting other sources: an attacker
// guessing the page password cannot lock out the UEM's own servers. It is
// per process; each replica throttles on its own.
type Throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu      sync.Mutex
	sources map[string]*throttleEntry
}

type throttleEntry struct {
	windowStart  time.Time
	failures     int
	blockedUntil time.Time
}

// NewThrottle returns a Throttle on the clock now.
func NewThrottle(cfg ThrottleConfig, now func() time.Time) *Throttle {
	if cfg.Failures <= 0 {
		cfg.Failures = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Block <= 0 {
		cfg.Block = 5 * time.Minute
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 10000
	}
	return &Throttle{cfg: cfg, now: now, sources: map[string]*throttleEntry{}}
}

// Blocked reports whether source is blocked, and for how long.
func (t *Throttle) Blocked(source string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.sources[source]
	if e == nil {
		return 0, false
	}
	if d := e.blockedUntil.Sub(t.now()); d > 0 {
		return d, true
	}
	return 0, false
}

// Fail records a failed login from source.
func (t *Throttle) Fail(source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.sources[source]
	if e == nil {
		if len(t.sources) >= t.cfg.MaxSources {
			t.evict(now)
		}
		e = &throttleEntry{windowStart: now}
		t.sources[source] = e
	}
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.windowStart, e.failures = now, 0
	}
	e.failures++
	if e.failures >= t.cfg.Failures {
		e.blockedUntil = now.Add(t.cfg.Block)
		e.windowStart, e.failures = now, 0
	}
}

// Succeed forgets source's failures after a good login.
func (t *Throttle) Succeed(source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.sources[source]; e != nil && !e.blockedUntil.After(t.now()) {
		delete(t.sources, source)
	}
}

// evict drops idle entries; if none is idle, it drops an arbitrary one so
// memory stays bounded.
func (t *Throttle) evict(now time.Time) {
	for k, e := range t.sources {
		if now.Sub(e.windowStart) >= t.cfg.Window && !e.blockedUntil.After(now) {
			delete(t.sources, k)
		}
	}
	for k := range t.sources {
		if len(t.sources) < t.cfg.MaxSources {
			return
		}
		delete(t.sources, k)
	}
}
