package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/google/uuid"
)

func init() { register("eventstore", eventStoreScenario) }

// eventStoreScenario measures fsync'd appends of 200-byte events in batches
// of 1, 100 and 1000 (events/s and p99 latency per append call), then reads
// the whole of $all back through the official client.
func eventStoreScenario(ctx context.Context, o Options) (*Result, error) {
	url := o.EventStoreURL
	if url == "" {
		dir := o.DataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "fanfare-bench-es-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		srv, err := eventstored.Start(eventstored.Config{DataDir: dir, Listen: "127.0.0.1:0"})
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		url = srv.URL()
	}
	client, err := eventstore.Connect(url)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	res := &Result{Scenario: "eventstore", Figures: map[string]any{}, Floors: map[string]any{}, Pass: true}
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	var total int
	for _, batch := range []int{1, 100, 1000} {
		// Enough writers to keep the group commit busy without drowning
		// two cores in goroutines.
		writers := 16
		if batch >= 1000 {
			writers = 4
		}
		n, rate, p50, p99, err := appendPhase(ctx, client, payload, batch, writers, o.Duration)
		if err != nil {
			return nil, fmt.Errorf("append phase, batch %d: %w", batch, err)
		}
		total += n
		o.Log("append batch=%d writers=%d: %d events, %.0f events/s, p50 %.2f ms, p99 %.2f ms", batch, writers, n, rate, p50, p99)
		res.Figures[fmt.Sprintf("append_batch_%d", batch)] = map[string]any{
			"events": n, "writers": writers, "events_per_sec": round1(rate), "p50_ms": p50, "p99_ms": p99,
		}
		if batch == 100 {
			res.atLeast("append_batch_100.events_per_sec", rate, 50000)
		}
	}

	start := time.Now()
	read, err := readAllCount(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("read $all: %w", err)
	}
	el := time.Since(start)
	rate := float64(read) / el.Seconds()
	o.Log("read $all: %d events in %s, %.0f events/s", read, el.Round(time.Millisecond), rate)
	res.Figures["read_all"] = map[string]any{"events": read, "seconds": round1(el.Seconds()*1000) / 1000, "events_per_sec": round1(rate)}
	res.atLeast("read_all.events_per_sec", rate, 500000)
	if read < total {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("$all returned %d events, %d were appended", read, total))
	}
	return res, nil
}

func round1(f float64) float64 { return float64(int64(f*10)) / 10 }

func appendPhase(ctx context.Context, c *esdb.Client, payload []byte, batch, writers int, d time.Duration) (int, float64, float64, float64, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	events := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%d-%d-%s", batch, w, uuid.NewString()[:8])
			evs := make([]esdb.EventData, batch)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				for i := range evs {
					evs[i] = esdb.EventData{EventID: uuid.New(), EventType: "BenchEvent", ContentType: esdb.ContentTypeBinary, Data: payload}
				}
				t0 := time.Now()
				_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, evs...)
				dt := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, dt)
				events += batch
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return 0, 0, 0, 0, firstErr
	}
	sortDurations(lat)
	return events, float64(events) / el.Seconds(), percentileMS(lat, 0.50), percentileMS(lat, 0.99), nil
}

func readAllCount(ctx context.Context, c *esdb.Client) (int, error) {
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, ^uint64(0)>>1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}
