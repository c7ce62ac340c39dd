package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

func init() { register("bus", busScenario) }

// busScenario measures the whole path a service event takes: append to the
// event store → forwarder → Kafka (fsync'd) → a consumer group handler.
// Throughput: a burst of events appended as fast as the store takes them,
// timed from the first append to the last handled. Latency: events appended
// at a steady 5,000/s, each timed from its append (the envelope's
// occurred-at) to its handler.
func busScenario(ctx context.Context, o Options) (*Result, error) {
	st, err := startStack(ctx, "bus")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	store, broker, pub := st.store, st.broker, st.pub

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The consumer: the same router and processor wiring every service uses.
	var handled atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	measuring := atomic.Bool{}
	router, err := kafka.NewRouter(kafka.RouterConfig{}, pub)
	if err != nil {
		return nil, err
	}
	proc, err := kafka.NewEventGroupProcessor(router, kafka.ProcessorConfig{Brokers: broker.Brokers()})
	if err != nil {
		return nil, err
	}
	err = proc.AddHandlersGroup("bench-bus", cqrs.NewGroupEventHandler(func(ctx context.Context, e *eventsv1.PlayCounted) error {
		if measuring.Load() {
			if src, ok := kafka.SourceEvent(ctx); ok {
				d := time.Since(src.OccurredAt)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}
		handled.Add(1)
		return nil
	}))
	if err != nil {
		return nil, err
	}
	go router.Run(ctx)
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("router did not start")
	}

	appendPlays := func(stream string, n int) error {
		pending := make([]eventstore.Pending, n)
		for i := range pending {
			pending[i] = eventstore.Pending{Message: &eventsv1.PlayCounted{SongId: stream, SongPlayNumber: uint64(i + 1)}}
		}
		_, err := store.Append(ctx, stream, esdb.Any{}, pending...)
		return err
	}
	waitHandled := func(n int64, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for handled.Load() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("consumer handled %d of %d events", handled.Load(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}

	// Warm-up: group join and partition assignment happen here, not in the figures.
	if err := appendPlays("song-warmup", 100); err != nil {
		return nil, err
	}
	if err := waitHandled(100, 60*time.Second); err != nil {
		return nil, err
	}

	res := &Result{Scenario: "bus", Figures: map[string]any{}, Floors: map[string]any{}, Pass: true}

	// Throughput.
	burst := int(50000 * o.Duration.Seconds() / 3)
	if burst < 5000 {
		burst = 5000
	}
	base := handled.Load()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	const writers, perAppend = 16, 100
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * perAppend; i < burst; i += writers * perAppend {
				if err := appendPlays(fmt.Sprintf("song-burst-%d", (i/perAppend)%256), perAppend); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	sent := int64(((burst + perAppend - 1) / perAppend) * perAppend)
	if err := waitHandled(base+sent, 5*time.Minute); err != nil {
		return nil, err
	}
	el := time.Since(start)
	rate := float64(sent) / el.Seconds()
	o.Log("bus throughput: %d events appended→handled in %s = %.0f events/s", sent, el.Round(time.Millisecond), rate)
	res.Figures["throughput"] = map[string]any{"events": sent, "seconds": round1(el.Seconds()*1000) / 1000, "events_per_sec": round1(rate)}
	res.atLeast("throughput.events_per_sec", rate, 20000)

	// Latency at a steady 5,000 events/s: 50 single-event appends every 10 ms.
	measuring.Store(true)
	base = handled.Load()
	ticker := time.NewTicker(10 * time.Millisecond)
	deadline := time.Now().Add(o.Duration)
	var steady int64
	var swg sync.WaitGroup
	for tick := 0; time.Now().Before(deadline); tick++ {
		<-ticker.C
		for j := 0; j < 50; j++ {
			swg.Add(1)
			steady++
			go func(k int) {
				defer swg.Done()
				if err := appendPlays(fmt.Sprintf("song-steady-%d", k%64), 1); err != nil {
					o.Log("append: %v", err)
				}
			}(tick*50 + j)
		}
	}
	ticker.Stop()
	swg.Wait()
	if err := waitHandled(base+steady, time.Minute); err != nil {
		return nil, err
	}
	mu.Lock()
	sortDurations(lat)
	p50, p99 := percentileMS(lat, 0.50), percentileMS(lat, 0.99)
	n := len(lat)
	mu.Unlock()
	o.Log("bus latency at 5000 events/s: %d events, p50 %.1f ms, p99 %.1f ms", n, p50, p99)
	res.Figures["latency_at_5000_per_sec"] = map[string]any{"events": n, "p50_ms": p50, "p99_ms": p99}
	res.atMost("latency_at_5000_per_sec.p99_ms", p99, 100)
	return res, nil
}
