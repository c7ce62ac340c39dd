package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/fanfare/fanfare/services/songs/domain"
)

func init() { register("fingerprint", fingerprintScenario) }

const (
	fpBenchSongs       = 1_000_000
	fpBenchMinItems    = 700 // ~90 s of audio
	fpBenchMaxItems    = 950 // fpcalc's default 120 s
	fpBenchLookups     = 2000
	fpBenchUnknown     = 500
	fpBenchDamagedPct  = 10 // items of a variant replaced outright
	fpBenchUnknownSeed = 1 << 40
	fpBenchMemoryLimit = 7 << 30
)

// fpBenchFingerprint is song i's synthetic fingerprint: a random walk that
// flips 0–3 bits per item, like real Chromaprint items that change a little
// from one to the next. It is regenerated on demand, not stored twice.
func fpBenchFingerprint(i uint64, buf []uint32) []uint32 {
	r := rand.New(rand.NewPCG(i, 0x9e3779b97f4a7c15))
	n := fpBenchMinItems + r.IntN(fpBenchMaxItems-fpBenchMinItems+1)
	buf = buf[:0]
	x := r.Uint32()
	for range n {
		v := r.Uint64()
		for k := range v & 3 {
			x ^= 1 << (v >> (8 + 8*k) & 31)
		}
		buf = append(buf, x)
	}
	return buf
}

// fingerprintScenario builds a FingerprintIndex of a million synthetic
// fingerprints (700–950 items) and measures registrations per second, the
// heap, and the latency and accuracy of conflict lookups for noisy,
// shifted, truncated copies of registered songs and for unregistered ones.
func fingerprintScenario(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Scenario: "fingerprint", Figures: map[string]any{}, Floors: map[string]any{}, Pass: true}
	// A soft memory limit, as the service runs with (GOMEMLIMIT): without
	// one the heap may grow to twice the live index before the GC runs.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(fpBenchMemoryLimit))
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	id := func(i int) string { return "song-" + strconv.Itoa(i) }

	// Build: time the Add calls only, not the generation.
	var addTime time.Duration
	var items int64
	buf := make([]uint32, 0, fpBenchMaxItems)
	wall := time.Now()
	for i := range fpBenchSongs {
		if i%100_000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if i > 0 {
				o.Log("fingerprint: %d songs indexed, %.0f adds/s", i, float64(i)/addTime.Seconds())
			}
		}
		fp := fpBenchFingerprint(uint64(i), buf)
		items += int64(len(fp))
		t0 := time.Now()
		if err := x.Add(id(i), fp); err != nil {
			return nil, err
		}
		addTime += time.Since(t0)
	}
	buildWall := time.Since(wall)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := x.Stats()
	const gib = 1 << 30
	heap := float64(ms.HeapAlloc) / gib
	addsPerSec := float64(fpBenchSongs) / addTime.Seconds()
	o.Log("fingerprint: %d songs (%d items) in %s, %.0f adds/s, heap %.2f GiB", fpBenchSongs, items, buildWall.Round(time.Millisecond), addsPerSec, heap)
	res.Figures["index"] = map[string]any{
		"songs":                  fpBenchSongs,
		"items_per_fingerprint":  fmt.Sprintf("%d-%d (90-120 s of audio)", fpBenchMinItems, fpBenchMaxItems),
		"items":                  items,
		"postings":               st.Postings,
		"buckets":                st.Buckets,
		"adds_per_sec":           round1(addsPerSec),
		"build_seconds":          round1(buildWall.Seconds()),
		"heap_live_gib":          float64(int64(heap*100)) / 100,
		"fingerprint_items_gib":  float64(items*4*100/gib) / 100,
		"go_memory_limit_gib":    fpBenchMemoryLimit / gib,
		"adds_single_goroutine":  true,
		"fingerprints_generated": "random walk flipping 0-3 bits per item",
	}

	// Lookups of damaged copies of registered songs.
	r := rand.New(rand.NewPCG(7, 7))
	var lat []time.Duration
	hits, lookups := 0, 0
	var misses []string
	deadline := time.Now().Add(o.Duration)
	for lookups < fpBenchLookups || time.Now().Before(deadline) {
		if lookups%500 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k := r.IntN(fpBenchSongs)
		fp := fpBenchFingerprint(uint64(k), buf)
		q := fpBenchVariant(r, fp)
		t0 := time.Now()
		m := x.Lookup(q)
		lat = append(lat, time.Since(t0))
		lookups++
		if len(m) > 0 && m[0].SongID == id(k) {
			hits++
		} else if len(misses) < 5 {
			misses = append(misses, fmt.Sprintf("%s (%d items): %v", id(k), len(q), m))
		}
	}
	// Lookups of fingerprints that were never registered.
	falsePos := 0
	var unknownLat []time.Duration
	for i := range fpBenchUnknown {
		q := fpBenchFingerprint(fpBenchUnknownSeed+uint64(i), buf)
		t0 := time.Now()
		m := x.Lookup(q)
		unknownLat = append(unknownLat, time.Since(t0))
		if len(m) > 0 {
			falsePos++
		}
	}
	all := append(append([]time.Duration(nil), lat...), unknownLat...)
	sortDurations(lat)
	sortDurations(unknownLat)
	sortDurations(all)
	p50, p99, maxMS := percentileMS(all, 0.5), percentileMS(all, 0.99), percentileMS(all, 1)
	hitRate := 100 * float64(hits) / float64(lookups)
	o.Log("fingerprint: %d lookups, hit rate %.2f%%, p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d unregistered, %d false positives",
		lookups, hitRate, p50, p99, maxMS, fpBenchUnknown, falsePos)
	if len(misses) > 0 {
		o.Log("fingerprint: misses: %s", strings.Join(misses, "; "))
	}
	res.Figures["lookup"] = map[string]any{
		"variant": fmt.Sprintf("registered song shifted by -120..+120 items, truncated to 25-100%%, 0-2 bits flipped per item, %d%% of items replaced by random ones", fpBenchDamagedPct),
		"lookups": lookups, "hits": hits, "hit_rate_pct": float64(int64(hitRate*100)) / 100,
		"registered_p50_ms": percentileMS(lat, 0.5), "registered_p99_ms": percentileMS(lat, 0.99),
		"unregistered": fpBenchUnknown, "false_positives": falsePos,
		"unregistered_p50_ms": percentileMS(unknownLat, 0.5), "unregistered_p99_ms": percentileMS(unknownLat, 0.99),
		"p50_ms": p50, "p99_ms": p99, "max_ms": maxMS,
		"single_goroutine": true,
	}
	res.Figures["process_peak_rss_gib"] = peakRSSGiB()
	res.atMost("lookup.p99_ms", p99, 10)
	res.atLeast("lookup.hit_rate_pct", hitRate, 99)
	res.atMost("lookup.false_positives", float64(falsePos), 0)
	res.atMost("index.heap_live_gib", heap, 8)
	return res, nil
}

// fpBenchVariant damages a copy of fp: shifted by up to ±120 items (cut,
// or delayed behind unrelated items), truncated to 25–100%, every item with
// 0–2 bits flipped and fpBenchDamagedPct% of items replaced outright.
func fpBenchVariant(r *rand.Rand, fp []uint32) []uint32 {
	shift := r.IntN(2*domain.FingerprintMaxOffset+1) - domain.FingerprintMaxOffset
	var q []uint32
	if shift >= 0 {
		q = append(q, fp[shift:]...)
	} else {
		for range -shift {
			q = append(q, r.Uint32())
		}
		q = append(q, fp...)
	}
	keep := len(fp)/4 + r.IntN(len(fp)*3/4+1)
	keep = max(keep, 2*max(0, -shift)+domain.FingerprintMinItems) // a delayed copy must still overlap by half
	if keep < len(q) {
		q = q[:keep]
	}
	for i := range q {
		if r.IntN(100) < fpBenchDamagedPct {
			q[i] = r.Uint32()
			continue
		}
		for range r.IntN(3) {
			q[i] ^= 1 << r.IntN(32)
		}
	}
	return q
}

// peakRSSGiB is the process's peak resident set (Linux), or -1.
func peakRSSGiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				return float64(int64(kb/(1<<20)*100)) / 100
			}
		}
	}
	return -1
}
