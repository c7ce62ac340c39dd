package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/cluster"
	"github.com/fanfare/fanfare/tests/e2e/scenario"
)

// chaosProfile is how big the chaos run is and how often it kills. The
// test task runs the small one; `go tool task chaos` sets
// FANFARE_CHAOS=full for the full scenario.
type chaosProfile struct {
	name  string
	size  scenario.Size
	every time.Duration
}

func profile(t *testing.T) chaosProfile {
	switch p := os.Getenv("FANFARE_CHAOS"); p {
	case "", "small":
		return chaosProfile{"small", scenario.Size{Listeners: 40, Artists: 8, Songs: 60}, 3 * time.Second}
	case "full":
		return chaosProfile{"full", fullSize, 2 * time.Second}
	default:
		t.Fatalf("FANFARE_CHAOS=%q: want small (default) or full", p)
		return chaosProfile{}
	}
}

// monkey kills a process with SIGKILL every few seconds and restarts it on
// the same address and data, until stopped. The broker and the event store
// are the first and second victims, so each goes down at least once;
// the others are drawn at random (seeded, logged).
type monkey struct {
	kills []string
	err   error
}

func (m *monkey) run(ctx context.Context, t *testing.T, c *cluster.Cluster, every time.Duration, seed uint64, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(seed, seed))
	procs := c.Procs()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(every):
		}
		victim := procs[r.IntN(len(procs))]
		switch n {
		case 1:
			victim = c.Proc("broker")
		case 2:
			victim = c.Proc("eventstore")
		}
		start := time.Now()
		if err := c.Restart(ctx, victim); err != nil {
			m.err = err
			return
		}
		m.kills = append(m.kills, victim.Name)
		t.Logf("chaos: kill -9 #%d: %s, back in %s", n, victim.Name, time.Since(start).Round(time.Millisecond))
	}
}

// TestChaos runs the scenario while a process is killed with SIGKILL and
// restarted every few seconds (the broker and the event store at least
// once each): the final balances, supply and settlement must equal the
// calm run's to the cent — nothing lost, nothing duplicated.
func TestChaos(t *testing.T) {
	p := profile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	want := calmOutcome(t, ctx, p.size)

	c := startCluster(t, ctx, cluster.Config{})
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FANFARE_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("FANFARE_CHAOS_SEED: %v", err)
		}
	}
	t.Logf("chaos profile %s: %+v, a kill every %s, seed %d (FANFARE_CHAOS_SEED=%d repeats the victims)", p.name, p.size, p.every, seed, seed)
	stop, stopped := make(chan struct{}), make(chan struct{})
	var m monkey
	go func() { defer close(stopped); m.run(ctx, t, c, p.every, seed, stop) }()
	start := time.Now()
	got, err := scenario.Run(ctx, envOf(t, c), p.size)
	close(stop)
	<-stopped
	if m.err != nil {
		t.Fatalf("chaos: a restart failed: %v", m.err)
	}
	if err != nil {
		t.Fatalf("scenario under chaos (after %d kills: %v): %v", len(m.kills), m.kills, err)
	}
	counts := map[string]int{}
	for _, k := range m.kills {
		counts[k]++
	}
	t.Logf("chaos: %d kills in %s (%v), %d retried calls", len(m.kills), time.Since(start).Round(time.Second), counts, got.Retries)
	for _, must := range []string{"broker", "eventstore"} {
		if !slices.Contains(m.kills, must) {
			t.Errorf("the %s was never killed: the run ended after %d kills", must, len(m.kills))
		}
	}
	if err := got.Check(); err != nil {
		t.Fatalf("chaos run: %v", err)
	}
	if err := got.Compare(want); err != nil {
		t.Fatalf("chaos run differs from the calm run: %v", err)
	}
}
