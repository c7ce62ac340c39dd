package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanfare/fanfare/services/chains/domain"
)

func init() { register("chains", chainsScenario) }

// chainsHops is the layers of every benchmarked token (root included).
const chainsHops = 8

// chainsScenario measures referral token resolutions per second (DESIGN §4):
// 8-layer tokens, pre-built and all distinct, peeled and verified by
// domain.Resolve on one goroutine, then on GOMAXPROCS goroutines. The issue
// sets no floor; the scenario holds a modest one of 200 resolutions/s on one
// core. A resolution is 8 X25519 box openings and 8 Ed25519 verifications
// (about 0.6 ms on an idle modern core, 2 ms on a busy 2-core VM); a
// purchase needs one.
func chainsScenario(ctx context.Context, o Options) (*Result, error) {
	seed := sha256.Sum256([]byte("bench chains service"))
	svc := domain.DeriveServiceKeys(ed25519.NewKeyFromSeed(seed[:]))
	const distributors = 64
	keys := map[string]ed25519.PrivateKey{}
	pubs := map[string]ed25519.PublicKey{}
	for i := 0; i < distributors; i++ {
		id := fmt.Sprintf("distributor-%02d", i)
		s := sha256.Sum256([]byte(id))
		keys[id] = ed25519.NewKeyFromSeed(s[:])
		pubs[id] = keys[id].Public().(ed25519.PublicKey)
	}
	lookup := func(id string) (ed25519.PublicKey, bool) { k, ok := pubs[id]; return k, ok }

	const tokens = 1024
	toks := make([][]byte, tokens)
	for i := range toks {
		tok, err := domain.IssueRoot(svc, fmt.Sprint("bench-token-", i), "bench-song", fmt.Sprintf("distributor-%02d", i%distributors))
		if err != nil {
			return nil, err
		}
		for h := 1; h < chainsHops; h++ {
			id := fmt.Sprintf("distributor-%02d", (i*7+h*13)%distributors)
			if tok, err = domain.Extend(tok, "bench-song", id, keys[id], svc.Public()); err != nil {
				return nil, err
			}
		}
		toks[i] = tok
	}
	o.Log("chains: built %d distinct %d-layer tokens (%d bytes each)", tokens, chainsHops, len(toks[0]))

	phase := func(workers int, d time.Duration) (int64, time.Duration, error) {
		var done atomic.Int64
		var firstErr error
		var once sync.Once
		deadline := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += workers {
					c, err := domain.Resolve(toks[i%tokens], "bench-song", "bench-buyer", svc, lookup, 0)
					if err == nil && len(c.Raw) != chainsHops {
						err = fmt.Errorf("resolved %d layers, want %d", len(c.Raw), chainsHops)
					}
					if err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					done.Add(1)
				}
			}(w)
		}
		wg.Wait()
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return done.Load(), time.Since(start), firstErr
	}

	res := &Result{Scenario: "chains", Figures: map[string]any{}, Floors: map[string]any{}, Pass: true}
	n, el, err := phase(1, o.Duration/2)
	if err != nil {
		return nil, err
	}
	single := float64(n) / el.Seconds()
	o.Log("chains: 1 goroutine: %d resolutions in %s = %.0f/s (%.1f µs each)", n, el.Round(time.Millisecond), single, el.Seconds()*1e6/float64(n))
	procs := runtime.GOMAXPROCS(0)
	n2, el2, err := phase(procs, o.Duration/2)
	if err != nil {
		return nil, err
	}
	parallel := float64(n2) / el2.Seconds()
	o.Log("chains: %d goroutines: %d resolutions in %s = %.0f/s", procs, n2, el2.Round(time.Millisecond), parallel)
	res.Figures["hops"] = chainsHops
	res.Figures["token_bytes"] = len(toks[0])
	res.Figures["single_core"] = map[string]any{"resolutions": n, "resolutions_per_sec": round1(single), "us_per_resolution": round1(el.Seconds() * 1e6 / float64(n))}
	res.Figures["parallel"] = map[string]any{"goroutines": procs, "resolutions": n2, "resolutions_per_sec": round1(parallel)}
	res.atLeast("single_core.resolutions_per_sec", single, 200)
	return res, nil
}
