package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/cluster"
	"github.com/fanfare/fanfare/tests/e2e/scenario"
)

// fullSize is the scenario: 100 listeners, 20 artists, 200 songs.
var fullSize = scenario.Size{Listeners: 100, Artists: 20, Songs: 200}

// calmRuns keeps each calm outcome by size, so the chaos test compares
// with the calm run of this process instead of running it again.
var calmRuns = struct {
	sync.Mutex
	by map[scenario.Size]*scenario.Outcome
}{by: map[scenario.Size]*scenario.Outcome{}}

func envOf(t *testing.T, c *cluster.Cluster) scenario.Env {
	return scenario.Env{GatewayURL: c.GatewayURL(), KratosPublicURL: c.KratosPublicURL(), KratosAdminURL: c.KratosAdminURL(),
		EventStoreURL: c.EventStoreURL(), Log: t.Logf}
}

// run runs the scenario on c and checks its outcome on its own terms.
func run(t *testing.T, ctx context.Context, c *cluster.Cluster, size scenario.Size) *scenario.Outcome {
	t.Helper()
	start := time.Now()
	out, err := scenario.Run(ctx, envOf(t, c), size)
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	t.Logf("scenario %+v ran in %s (%d retried calls)", size, time.Since(start).Round(time.Millisecond), out.Retries)
	if err := out.Check(); err != nil {
		t.Fatal(err)
	}
	return out
}

// calm runs the scenario on a fresh cluster with nothing disturbing it,
// checks it, and remembers its outcome.
func calm(t *testing.T, ctx context.Context, size scenario.Size, cfg cluster.Config) *scenario.Outcome {
	t.Helper()
	out := run(t, ctx, startCluster(t, ctx, cfg), size)
	calmRuns.Lock()
	calmRuns.by[size] = out
	calmRuns.Unlock()
	return out
}

// calmOutcome is the calm run of this size, run now if none has been.
func calmOutcome(t *testing.T, ctx context.Context, size scenario.Size) *scenario.Outcome {
	calmRuns.Lock()
	out := calmRuns.by[size]
	calmRuns.Unlock()
	if out != nil {
		return out
	}
	return calm(t, ctx, size, cluster.Config{})
}

// TestEndToEnd runs the whole scenario with every part — the event store,
// the broker, the forwarder, each service and saga, the gateway — as its
// own process, on real Kratos sessions, and checks every balance to the
// cent, the invariants, a reconciling settlement export and two agreeing
// audit replays (scenario.Outcome.Check).
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	calm(t, ctx, fullSize, cluster.Config{})
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}
