package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/metrics"
)

func TestHandlerServesFanfareMetrics(t *testing.T) {
	metrics.SetConsumerLag("g-test", "topic-test", 3, 42)
	tst := metrics.ForBook("TST")
	tst.ObserveBatch(7)
	tst.ObserveCommit(3 * time.Millisecond)
	tst.CountRefusal("insufficient_funds")
	tst.CountRefusal("")

	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`fanfare_consumer_lag{group="g-test",partition="3",topic="topic-test"} 42`,
		`fanfare_ledger_batch_size_bucket{book="TST",le="8"} 1`,
		`fanfare_ledger_batch_size_bucket{book="TST",le="4096"} 1`,
		`fanfare_ledger_commit_seconds_count{book="TST"} 1`,
		`fanfare_ledger_refusals_total{book="TST",reason="insufficient_funds"} 1`,
		`fanfare_ledger_refusals_total{book="TST",reason="unknown"} 1`,
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	metrics.ForgetConsumerLag("g-test", "topic-test", 3)
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "fanfare_consumer_lag" && len(f.GetMetric()) > 0 {
			t.Fatalf("%d lag series after forgetting the partition", len(f.GetMetric()))
		}
	}
}
