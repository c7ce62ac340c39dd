package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

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
	client, url, embedded, done, err := openStore(o, "es")
	if err != nil {
		return nil, err
	}
	defer done()

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

	// $all through the official client: one reader, then parallel readers
	// over disjoint position ranges (how a replay uses both cores).
	for _, readers := range []int{1, 4} {
		start := time.Now()
		read, err := readAllParallel(ctx, client, url, readers)
		if err != nil {
			return nil, fmt.Errorf("read $all: %w", err)
		}
		el := time.Since(start)
		rate := float64(read) / el.Seconds()
		o.Log("read $all, official client, %d reader(s): %d events in %s, %.0f events/s", readers, read, el.Round(time.Millisecond), rate)
		res.Figures[fmt.Sprintf("read_all_client_%d_readers", readers)] = map[string]any{"events": read, "seconds": round1(el.Seconds()*1000) / 1000, "events_per_sec": round1(rate)}
		if read < total {
			res.Pass = false
			res.Failures = append(res.Failures, fmt.Sprintf("$all returned %d events, %d were appended", read, total))
		}
		if readers == 4 {
			res.atLeast(fmt.Sprintf("read_all_client_%d_readers.events_per_sec", readers), rate, 500000)
		}
	}
	// The server's delivery rate over the wire: the same gRPC read, with the
	// frames counted but not decoded, so the client's protobuf decoding
	// (the official client's cost, not the store's) is left out.
	if o.EventStoreURL == "" {
		head, err := eventstore.HeadPosition(ctx, url)
		if err != nil {
			return nil, err
		}
		var start time.Time
		var read int
		var el time.Duration
		var rate float64
		for _, readers := range []int{1, 2} {
			start = time.Now()
			var mu sync.Mutex
			var bytes int64
			read = 0
			var wg sync.WaitGroup
			var firstErr error
			step := head/uint64(readers) + 1
			for i := 0; i < readers; i++ {
				wg.Add(1)
				go func(from uint64) {
					defer wg.Done()
					n, b, err := readAllWire(ctx, addrOf(url), from, step)
					mu.Lock()
					defer mu.Unlock()
					read += n
					bytes += b
					if err != nil && firstErr == nil {
						firstErr = err
					}
				}(uint64(i)*step + 1) // positions start at 1: reader i reads [i·step+1, (i+1)·step]
			}
			wg.Wait()
			if firstErr != nil {
				return nil, fmt.Errorf("wire read $all: %w", firstErr)
			}
			el = time.Since(start)
			rate = float64(read) / el.Seconds()
			o.Log("read $all, server wire rate (frames not decoded), %d reader(s): %d events, %d MB in %s, %.0f events/s", readers, read, bytes>>20, el.Round(time.Millisecond), rate)
			res.Figures[fmt.Sprintf("read_all_server_wire_%d_readers", readers)] = map[string]any{"events": read, "bytes": bytes, "seconds": round1(el.Seconds()*1000) / 1000, "events_per_sec": round1(rate)}
		}

		// The storage engine's own scan of $all, in process, no gRPC.
		start = time.Now()
		read = 0
		if err := embedded.Store().ReadAll(0, false, func(*eventstored.Record) (bool, error) { read++; return true, nil }); err != nil {
			return nil, err
		}
		el = time.Since(start)
		rate = float64(read) / el.Seconds()
		o.Log("read $all, storage engine scan (in process): %d events in %s, %.0f events/s", read, el.Round(time.Millisecond), rate)
		res.Figures["read_all_engine_scan"] = map[string]any{"events": read, "seconds": round1(el.Seconds()*1000) / 1000, "events_per_sec": round1(rate)}
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

// openStore connects to o.EventStoreURL, or starts an embedded store in
// o.DataDir (a temporary directory when empty; embedded is then the
// server). done, nil on error, closes what it opened and removes a
// temporary directory.
func openStore(o Options, name string) (client *esdb.Client, url string, embedded *eventstored.Server, done func(), err error) {
	var undo []func()
	done = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	url = o.EventStoreURL
	if url == "" {
		dir := o.DataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "fanfare-bench-"+name+"-")
			if err != nil {
				return nil, "", nil, nil, err
			}
			undo = append(undo, func() { os.RemoveAll(tmp) })
			dir = tmp
		}
		if embedded, err = eventstored.Start(eventstored.Config{DataDir: dir, Listen: "127.0.0.1:0"}); err != nil {
			done()
			return nil, "", nil, nil, err
		}
		undo = append(undo, func() { embedded.Close() })
		url = embedded.URL()
	}
	if client, err = eventstore.Connect(url); err != nil {
		done()
		return nil, "", nil, nil, err
	}
	undo = append(undo, func() { client.Close() })
	return client, url, embedded, done, nil
}

// readAllParallel reads the whole of $all with n readers over disjoint
// position ranges and returns the number of events read. Ranges are cut by
// position arithmetic, which suits the embedded store's dense positions.
func readAllParallel(ctx context.Context, c *esdb.Client, url string, n int) (int, error) {
	head, err := eventstore.HeadPosition(ctx, url)
	if err != nil || head == 0 {
		return 0, err
	}
	var mu sync.Mutex
	total := 0
	var firstErr error
	var wg sync.WaitGroup
	step := head/uint64(n) + 1
	for i := 0; i < n; i++ {
		from, to := uint64(i)*step, uint64(i+1)*step // [from, to)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cnt, err := readRange(ctx, c, from, to)
			mu.Lock()
			defer mu.Unlock()
			total += cnt
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return total, firstErr
}

func readRange(ctx context.Context, c *esdb.Client, from, to uint64) (int, error) {
	var start esdb.AllPosition = esdb.Start{}
	if from > 0 {
		start = esdb.Position{Commit: from, Prepare: from}
	}
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: start}, to-from)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	n := 0
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if ev.OriginalEvent().Position.Commit >= to {
			return n, nil
		}
		n++
	}
}

func addrOf(url string) string {
	u := strings.TrimPrefix(url, "esdb://")
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}

// rawCodec hands gRPC frames over as bytes, undecoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

// readAllWire reads count events of $all from position from over a plain
// gRPC stream, counting frames without decoding them.
func readAllWire(ctx context.Context, addr string, from, count uint64) (int, int64, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	req := &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_Position{
			Position: &api.ReadReq_Options_Position{CommitPosition: from, PreparePosition: from}}}},
		CountOption:  &api.ReadReq_Options_Count{Count: count},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/event_store.client.streams.Streams/Read")
	if err != nil {
		return 0, 0, err
	}
	if err := stream.SendMsg(req); err != nil {
		return 0, 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return 0, 0, err
	}
	n := 0
	var bytes int64
	for {
		var frame []byte
		err := stream.RecvMsg(&frame)
		if errors.Is(err, io.EOF) {
			return n, bytes, nil
		}
		if err != nil {
			return n, bytes, err
		}
		n++
		bytes += int64(len(frame))
	}
}
