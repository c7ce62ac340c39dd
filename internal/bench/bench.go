// Package bench holds the named benchmark scenarios behind
// `fanfare bench <scenario> --json`. Each scenario measures one issue's
// figures on this machine and reports them, with the floors they must meet,
// as one JSON object.
package bench

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Options are the knobs every scenario understands.
type Options struct {
	// Duration bounds each timed phase.
	Duration time.Duration
	// EventStoreURL points at an external store; empty starts the embedded one.
	EventStoreURL string
	// DataDir is where embedded infrastructure keeps its data; empty = temp dir.
	DataDir string
	// Log receives progress lines (not the result).
	Log func(format string, args ...any)
}

// Result is what a scenario reports. Pass is false when a floor is missed.
type Result struct {
	Scenario string         `json:"scenario"`
	Figures  map[string]any `json:"figures"`
	Floors   map[string]any `json:"floors"`
	Pass     bool           `json:"pass"`
	Failures []string       `json:"failures,omitempty"`
}

// Scenario runs one benchmark.
type Scenario func(ctx context.Context, opts Options) (*Result, error)

var scenarios = map[string]Scenario{}

func register(name string, s Scenario) { scenarios[name] = s }

// Names lists the scenarios.
func Names() []string {
	var out []string
	for n := range scenarios {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Run runs the named scenario.
func Run(ctx context.Context, name string, opts Options) (*Result, error) {
	s, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("unknown benchmark scenario %q (have %v)", name, Names())
	}
	if opts.Duration <= 0 {
		opts.Duration = 3 * time.Second
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	return s(ctx, opts)
}

// percentile of sorted durations, in milliseconds.
func percentileMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// floor records a minimum (higher is better) and whether it held.
func (r *Result) atLeast(name string, got, floor float64) {
	r.Floors[name] = map[string]float64{"min": floor}
	if got < floor {
		r.Pass = false
		r.Failures = append(r.Failures, fmt.Sprintf("%s = %.1f, below the floor %.1f", name, got, floor))
	}
}

// atMost records a ceiling (lower is better) and whether it held.
func (r *Result) atMost(name string, got, ceiling float64) {
	r.Floors[name] = map[string]float64{"max": ceiling}
	if got > ceiling {
		r.Pass = false
		r.Failures = append(r.Failures, fmt.Sprintf("%s = %.1f, above the ceiling %.1f", name, got, ceiling))
	}
}
