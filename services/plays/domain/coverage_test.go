package domain_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fanfare/fanfare/services/plays/domain"
)

// bitmap is the brute-force model of a coverage: one bool per millisecond.
type bitmap []bool

// add sets [from, to) clamped to the bitmap and returns how many were unset.
func (b bitmap) add(from, to uint64) uint64 {
	var n uint64
	for ms := from; ms < to && ms < uint64(len(b)); ms++ {
		if !b[ms] {
			b[ms] = true
			n++
		}
	}
	return n
}

// spans returns the runs of set milliseconds.
func (b bitmap) spans() []domain.Span {
	var out []domain.Span
	for ms := 0; ms < len(b); ms++ {
		if !b[ms] {
			continue
		}
		start := ms
		for ms < len(b) && b[ms] {
			ms++
		}
		out = append(out, domain.Span{FromMs: uint64(start), ToMs: uint64(ms)})
	}
	return out
}

func (b bitmap) total() uint64 {
	var n uint64
	for _, set := range b {
		if set {
			n++
		}
	}
	return n
}

// checkCoverage adds one range to both the coverage and the model and fails
// unless they agree on the added amount, the total and the spans, and the
// spans are sorted, disjoint and not touching.
func checkCoverage(t *testing.T, c *domain.Coverage, b bitmap, from, to uint64) {
	t.Helper()
	want := b.add(from, to)
	if got := c.Add(from, to); got != want {
		t.Fatalf("Add(%d, %d) over %d ms = %d new ms, model says %d", from, to, len(b), got, want)
	}
	if c.Total() != b.total() {
		t.Fatalf("after Add(%d, %d): Total %d, model %d", from, to, c.Total(), b.total())
	}
	spans := c.Spans()
	if !slices.Equal(spans, b.spans()) {
		t.Fatalf("after Add(%d, %d): spans %v, model %v", from, to, spans, b.spans())
	}
	var sum uint64
	for i, s := range spans {
		if s.FromMs >= s.ToMs || s.ToMs > c.DurationMs() || i > 0 && spans[i-1].ToMs >= s.FromMs {
			t.Fatalf("spans not sorted, disjoint, non-touching and within the song: %v", spans)
		}
		sum += s.Len()
	}
	if sum != c.Total() {
		t.Fatalf("spans sum to %d, Total says %d", sum, c.Total())
	}
}

func TestCoverageMatchesBitmapModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 400; round++ {
		dur := rng.Uint64N(300)
		c, b := domain.NewCoverage(dur), make(bitmap, dur)
		for range 40 {
			// Ranges reach past the end and are sometimes empty or reversed.
			from, to := rng.Uint64N(dur+40), rng.Uint64N(dur+40)
			if rng.IntN(4) > 0 && from > to {
				from, to = to, from
			}
			checkCoverage(t, c, b, from, to)
		}
	}
}

func TestCoverageChorusReplayAddsNothing(t *testing.T) {
	c := domain.NewCoverage(200_000)
	c.Add(0, 90_000)
	for _, r := range [][2]uint64{{45_000, 60_000}, {45_000, 60_000}, {0, 90_000}, {89_999, 90_000}} {
		if n := c.Add(r[0], r[1]); n != 0 {
			t.Errorf("replaying [%d, %d) added %d ms", r[0], r[1], n)
		}
	}
	if c.Total() != 90_000 || len(c.Spans()) != 1 {
		t.Errorf("coverage %d ms in %v, want 90000 in one span", c.Total(), c.Spans())
	}
}

func TestCoverageSeekIsUnion(t *testing.T) {
	c := domain.NewCoverage(240_000)
	if n := c.Add(0, 60_000); n != 60_000 {
		t.Fatalf("0–60 s added %d", n)
	}
	if n := c.Add(90_000, 150_000); n != 60_000 {
		t.Fatalf("90–150 s added %d", n)
	}
	if c.Total() != 120_000 {
		t.Fatalf("coverage %d ms, want 120000", c.Total())
	}
	want := []domain.Span{{FromMs: 0, ToMs: 60_000}, {FromMs: 90_000, ToMs: 150_000}}
	if !slices.Equal(c.Spans(), want) {
		t.Fatalf("spans %v, want %v", c.Spans(), want)
	}
	// Filling the gap merges everything into one span; touching ranges merge.
	if n := c.Add(60_000, 90_000); n != 30_000 || len(c.Spans()) != 1 || c.Total() != 150_000 {
		t.Fatalf("gap fill added %d, spans %v", n, c.Spans())
	}
}

func TestCoverageClampsToDuration(t *testing.T) {
	c := domain.NewCoverage(1000)
	if n := c.Add(900, 5000); n != 100 {
		t.Errorf("Add(900, 5000) on a 1000 ms song added %d, want 100", n)
	}
	for _, r := range [][2]uint64{{1000, 2000}, {5000, 6000}, {10, 10}, {20, 10}} {
		if n := c.Add(r[0], r[1]); n != 0 {
			t.Errorf("Add(%d, %d) added %d, want 0", r[0], r[1], n)
		}
	}
	if c.Total() != 100 {
		t.Errorf("total %d, want 100", c.Total())
	}
	var zero domain.Coverage
	if n := zero.Add(0, 10); n != 0 || zero.Total() != 0 {
		t.Errorf("the zero coverage (duration 0) took %d ms", n)
	}
}

func TestCoverageReachesIsExact(t *testing.T) {
	c := domain.NewCoverage(3) // 50% of 3 ms is 1.5 ms: 2 ms reach it, 1 ms does not
	c.Add(0, 1)
	if c.Reaches(500_000) {
		t.Fatal("1 of 3 ms reaches 50%")
	}
	c.Add(1, 2)
	if !c.Reaches(500_000) {
		t.Fatal("2 of 3 ms does not reach 50%")
	}
	big := domain.NewCoverage(1 << 62) // products beyond 64 bits
	big.Add(0, 1<<61)
	if !big.Reaches(500_000) || big.Reaches(500_001) {
		t.Fatal("half of 2^62 ms must reach exactly 500000 ppm")
	}
	if domain.NewCoverage(0).Reaches(1) {
		t.Fatal("a zero-length song reached a threshold")
	}
	full := domain.NewCoverage(10)
	full.Add(0, 10)
	if !full.Reaches(1_000_000) {
		t.Fatal("full coverage does not reach 100%")
	}
}

func TestCoverageCloneIsIndependent(t *testing.T) {
	c := domain.NewCoverage(100)
	c.Add(0, 10)
	d := c.Clone()
	d.Add(20, 30)
	if c.Total() != 10 || d.Total() != 20 {
		t.Fatalf("clone shares state: %d, %d", c.Total(), d.Total())
	}
	s := c.Spans()
	s[0].ToMs = 99
	if c.Spans()[0].ToMs != 10 {
		t.Fatal("Spans returned the internal slice")
	}
}

// fill fills data from a ChaCha8 stream seeded with seed.
func fill(seed [32]byte, data []byte) {
	c := rand.NewChaCha8(seed)
	_, _ = c.Read(data)
}
