// Package estest is the universal event store test suite: the semantics
// Fanfare relies on, checked through the official KurrentDB client. Every
// store Fanfare runs against (the embedded one, a real KurrentDB) must pass it.
package estest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// Run runs the whole suite against the store the client is connected to.
func Run(t *testing.T, client *esdb.Client) {
	t.Run("ExpectedRevisionMatrix", func(t *testing.T) { expectedRevisionMatrix(t, client) })
	t.Run("IdempotentReappend", func(t *testing.T) { idempotentReappend(t, client) })
	t.Run("ConcurrentWritersOneWins", func(t *testing.T) { concurrentWriters(t, client) })
	t.Run("ReadStreamRanges", func(t *testing.T) { readStreamRanges(t, client) })
	t.Run("ReadAllRanges", func(t *testing.T) { readAllRanges(t, client) })
	t.Run("SubscribeStreamCatchUpThenLive", func(t *testing.T) { subscribeStream(t, client) })
	t.Run("SubscribeAllFilteredWithCheckpoints", func(t *testing.T) { subscribeAllFiltered(t, client) })
	t.Run("PositionsOnlyIncrease", func(t *testing.T) { positionsIncrease(t, client) })
	t.Run("DeleteAndTombstone", func(t *testing.T) { deleteAndTombstone(t, client) })
	t.Run("BadInput", func(t *testing.T) { badInput(t, client) })
}

// Stream returns a stream name no other test uses.
func Stream(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}

// Event makes an event with a fresh id.
func Event(typ string, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// Append appends and fails the test on error.
func Append(t *testing.T, c *esdb.Client, stream string, exp esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	r, err := c.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	if err != nil {
		t.Fatalf("append to %s (expected %T %v): %v", stream, exp, exp, err)
	}
	return r
}

// ReadStream reads events of a stream; a missing stream gives nil and the error.
func ReadStream(t *testing.T, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.RecordedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(ctx(t), stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return drain(rs)
}

func drain(rs *esdb.ReadStream) ([]*esdb.RecordedEvent, error) {
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.OriginalEvent())
	}
}

func revisions(evs []*esdb.RecordedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.EventNumber
	}
	return out
}

func errCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func wantCode(t *testing.T, what string, err error, code esdb.ErrorCode) {
	t.Helper()
	got, ok := errCode(err)
	if !ok || got != code {
		t.Fatalf("%s: want esdb error code %d, got %v (code %d, esdb error %v)", what, code, err, got, ok)
	}
}

func expectedRevisionMatrix(t *testing.T, c *esdb.Client) {
	type state string
	const (
		none       state = "no stream"
		exists     state = "exists at revision 1"
		soft       state = "soft-deleted at revision 1"
		tombstoned state = "tombstoned"
	)
	setup := func(t *testing.T, st state) string {
		s := Stream("matrix")
		if st == none {
			return s
		}
		Append(t, c, s, esdb.NoStream{}, Event("A", `{}`), Event("A", `{}`))
		switch st {
		case soft:
			if _, err := c.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
				t.Fatal(err)
			}
		case tombstoned:
			if _, err := c.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	const (
		ok   = "ok"
		wev  = "wrong expected version"
		gone = "stream deleted"
	)
	cases := []struct {
		st   state
		exp  esdb.ExpectedRevision
		want string
		rev  uint64 // NextExpectedVersion after a successful append of one event
	}{
		{none, esdb.Any{}, ok, 0},
		{none, esdb.NoStream{}, ok, 0},
		{none, esdb.StreamExists{}, wev, 0},
		{none, esdb.Revision(0), wev, 0},
		{exists, esdb.Any{}, ok, 2},
		{exists, esdb.NoStream{}, wev, 0},
		{exists, esdb.StreamExists{}, ok, 2},
		{exists, esdb.Revision(1), ok, 2},
		{exists, esdb.Revision(0), wev, 0},
		{exists, esdb.Revision(2), wev, 0},
		{soft, esdb.Any{}, ok, 2},
		{soft, esdb.NoStream{}, ok, 2},
		{soft, esdb.Revision(1), ok, 2},
		{tombstoned, esdb.Any{}, gone, 0},
		{tombstoned, esdb.NoStream{}, gone, 0},
		{tombstoned, esdb.StreamExists{}, gone, 0},
		{tombstoned, esdb.Revision(1), gone, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%T%v", tc.st, tc.exp, tc.exp), func(t *testing.T) {
			s := setup(t, tc.st)
			before, _ := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
			r, err := c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp}, Event("B", `{"x":1}`))
			switch tc.want {
			case ok:
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				if r.NextExpectedVersion != tc.rev {
					t.Fatalf("next expected version: want %d, got %d", tc.rev, r.NextExpectedVersion)
				}
				evs, err := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
				if err != nil {
					t.Fatal(err)
				}
				// After a soft delete only the new event is visible.
				if got := evs[len(evs)-1]; got.EventType != "B" || got.EventNumber != tc.rev {
					t.Fatalf("last event: want B at %d, got %s at %d", tc.rev, got.EventType, got.EventNumber)
				}
				if tc.st == soft && len(evs) != 1 {
					t.Fatalf("recreated stream shows %d events, want only the new one", len(evs))
				}
			case wev:
				wantCode(t, "append", err, esdb.ErrorCodeWrongExpectedVersion)
			case gone:
				wantCode(t, "append", err, esdb.ErrorCodeStreamDeleted)
			}
			if tc.want != ok {
				after, _ := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
				if len(after) != len(before) {
					t.Fatalf("a refused append changed the stream: %d events before, %d after", len(before), len(after))
				}
			}
		})
	}
}

func idempotentReappend(t *testing.T, c *esdb.Client) {
	for _, tc := range []struct {
		name  string
		exp   esdb.ExpectedRevision
		setup int // events already in the stream
	}{
		{"no_stream", esdb.NoStream{}, 0},
		{"exact", esdb.Revision(2), 3},
		{"any", esdb.Any{}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Stream("idem")
			for i := 0; i < tc.setup; i++ {
				Append(t, c, s, esdb.Any{}, Event("Pre", `{}`))
			}
			evs := []esdb.EventData{Event("A", `1`), Event("A", `2`), Event("A", `3`)}
			first := Append(t, c, s, tc.exp, evs...)
			again := Append(t, c, s, tc.exp, evs...)
			if again.NextExpectedVersion != first.NextExpectedVersion || again.CommitPosition != first.CommitPosition {
				t.Fatalf("retry answered revision %d position %d, first answered %d %d",
					again.NextExpectedVersion, again.CommitPosition, first.NextExpectedVersion, first.CommitPosition)
			}
			got, err := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.setup+3 {
				t.Fatalf("stream has %d events after a retried append, want %d", len(got), tc.setup+3)
			}
			// A retry that only partly matches is neither a retry nor a new write.
			_, err = c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp}, evs[0], Event("A", `other`))
			wantCode(t, "partial retry", err, esdb.ErrorCodeWrongExpectedVersion)
		})
	}
}

func concurrentWriters(t *testing.T, c *esdb.Client) {
	s := Stream("race")
	Append(t, c, s, esdb.NoStream{}, Event("Opened", `{}`))
	for round := 0; round < 5; round++ {
		const writers = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(uint64(round))}, Event("Step", `{}`))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if code, _ := errCode(err); code == esdb.ErrorCodeWrongExpectedVersion {
					conflicts++
				} else {
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d winners and %d conflicts, want 1 and %d", round, wins, conflicts, writers-1)
		}
	}
	evs, err := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if err != nil || len(evs) != 6 {
		t.Fatalf("stream has %d events (%v), want 6", len(evs), err)
	}
}

func readStreamRanges(t *testing.T, c *esdb.Client) {
	s := Stream("range")
	for i := 0; i < 10; i++ {
		Append(t, c, s, esdb.Any{}, Event("N", fmt.Sprint(i)))
	}
	cases := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"forwards from start", esdb.ReadStreamOptions{From: esdb.Start{}}, 100, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"forwards from 7", esdb.ReadStreamOptions{From: esdb.Revision(7)}, 100, []uint64{7, 8, 9}},
		{"forwards from 2, limit 3", esdb.ReadStreamOptions{From: esdb.Revision(2)}, 3, []uint64{2, 3, 4}},
		{"forwards past the end", esdb.ReadStreamOptions{From: esdb.Revision(10)}, 100, nil},
		{"backwards from end, limit 4", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 4, []uint64{9, 8, 7, 6}},
		{"backwards from 3", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(3)}, 100, []uint64{3, 2, 1, 0}},
		{"forwards from end", esdb.ReadStreamOptions{From: esdb.End{}}, 100, nil},
	}
	for _, tc := range cases {
		evs, err := ReadStream(t, c, s, tc.opts, tc.count)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := revisions(evs); fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Fatalf("%s: revisions %v, want %v", tc.name, got, tc.want)
		}
	}
	evs, _ := ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Revision(4)}, 1)
	if len(evs) != 1 || string(evs[0].Data) != "4" || evs[0].EventType != "N" || evs[0].StreamID != s || evs[0].ContentType != "application/json" {
		t.Fatalf("event at revision 4 read back wrong: %+v", evs)
	}
	if evs[0].CreatedDate.IsZero() || time.Since(evs[0].CreatedDate) > time.Hour {
		t.Fatalf("created date %v is not the append time", evs[0].CreatedDate)
	}
	_, err := ReadStream(t, c, Stream("missing"), esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	wantCode(t, "read of a missing stream", err, esdb.ErrorCodeResourceNotFound)
}

func readAll(t *testing.T, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.RecordedEvent {
	t.Helper()
	rs, err := c.ReadAll(ctx(t), opts, count)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	evs, err := drain(rs)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func readAllRanges(t *testing.T, c *esdb.Client) {
	s := Stream("allrange")
	var positions []esdb.Position
	for i := 0; i < 5; i++ {
		r := Append(t, c, s, esdb.Any{}, Event("N", fmt.Sprint(i)))
		positions = append(positions, esdb.Position{Commit: r.CommitPosition, Prepare: r.PreparePosition})
	}
	// Forwards from a position includes the event at it.
	evs := readAll(t, c, esdb.ReadAllOptions{From: positions[1]}, 3)
	if len(evs) != 3 || evs[0].StreamID != s || evs[0].EventNumber != 1 || evs[2].EventNumber != 3 {
		t.Fatalf("forwards from position of revision 1: got %d events %v", len(evs), describe(evs))
	}
	// Backwards from a position gives the events before it.
	evs = readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: positions[3]}, 2)
	if len(evs) != 2 || evs[0].EventNumber != 2 || evs[1].EventNumber != 1 || evs[0].StreamID != s {
		t.Fatalf("backwards from position of revision 3: got %v", describe(evs))
	}
	// Backwards from the end starts at the newest event.
	evs = readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if len(evs) != 1 || evs[0].Position.Commit < positions[4].Commit {
		t.Fatalf("backwards from end: got %v, newest append was at %d", describe(evs), positions[4].Commit)
	}
	// Forwards from the start sees every event of the stream in order.
	var mine []uint64
	for _, e := range readAll(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 1<<62) {
		if e.StreamID == s {
			mine = append(mine, e.EventNumber)
		}
	}
	if fmt.Sprint(mine) != "[0 1 2 3 4]" {
		t.Fatalf("$all from start shows the stream as %v", mine)
	}
}

func describe(evs []*esdb.RecordedEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s@%d(pos %d) ", e.StreamID, e.EventNumber, e.Position.Commit)
	}
	return b.String()
}

// collector gathers subscription events in the background.
type collector struct {
	mu       sync.Mutex
	events   []*esdb.RecordedEvent
	caughtUp bool
	checks   []esdb.Position
	dropped  error
}

func collect(sub *esdb.Subscription) *collector {
	col := &collector{}
	go func() {
		for {
			ev := sub.Recv()
			col.mu.Lock()
			switch {
			case ev.EventAppeared != nil:
				col.events = append(col.events, ev.EventAppeared.OriginalEvent())
			case ev.CaughtUp != nil:
				col.caughtUp = true
			case ev.CheckPointReached != nil:
				col.checks = append(col.checks, *ev.CheckPointReached)
			case ev.SubscriptionDropped != nil:
				col.dropped = ev.SubscriptionDropped.Error
				col.mu.Unlock()
				return
			}
			col.mu.Unlock()
		}
	}()
	return col
}

func (col *collector) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		col.mu.Lock()
		ok := cond()
		col.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	t.Fatalf("timed out waiting for %s; have %d events (%s), caught up %v, dropped %v", what, len(col.events), describe(col.events), col.caughtUp, col.dropped)
}

func subscribeStream(t *testing.T, c *esdb.Client) {
	for _, tc := range []struct {
		name  string
		from  esdb.StreamPosition
		first uint64
	}{
		{"from start", esdb.Start{}, 0},
		{"after revision 1", esdb.Revision(1), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Stream("sub")
			for i := 0; i < 3; i++ {
				Append(t, c, s, esdb.Any{}, Event("N", fmt.Sprint(i)))
			}
			sub, err := c.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: tc.from})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			col := collect(sub)
			col.waitFor(t, "catch-up", func() bool { return col.caughtUp && len(col.events) == int(3-tc.first) })
			Append(t, c, s, esdb.Any{}, Event("Live", `1`), Event("Live", `2`))
			col.waitFor(t, "live events", func() bool { return len(col.events) == int(5-tc.first) })
			col.mu.Lock()
			defer col.mu.Unlock()
			for i, e := range col.events {
				if e.EventNumber != tc.first+uint64(i) {
					t.Fatalf("out of order: %s", describe(col.events))
				}
			}
		})
	}
	// Only what comes after the subscription started, from the end.
	s2 := Stream("subend")
	Append(t, c, s2, esdb.Any{}, Event("Old", `0`))
	sub, err := c.SubscribeToStream(ctx(t), s2, esdb.SubscribeToStreamOptions{From: esdb.End{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	col := collect(sub)
	col.waitFor(t, "caught up", func() bool { return col.caughtUp })
	Append(t, c, s2, esdb.Any{}, Event("New", `1`))
	col.waitFor(t, "new event", func() bool { return len(col.events) == 1 })
	if col.events[0].EventType != "New" {
		t.Fatalf("subscription from end delivered %s", describe(col.events))
	}
}

func subscribeAllFiltered(t *testing.T, c *esdb.Client) {
	for _, tc := range []struct {
		name   string
		filter func(tag string) *esdb.SubscriptionFilter
	}{
		{"stream prefix", func(tag string) *esdb.SubscriptionFilter {
			return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"keep" + tag + "-"}}
		}},
		{"event type prefix", func(tag string) *esdb.SubscriptionFilter {
			return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"Kept" + tag}}
		}},
		{"event type regex", func(tag string) *esdb.SubscriptionFilter {
			return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^Kept" + tag + "$"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
			wanted := "keep" + tag + "-"
			noise := Stream("noise" + tag)
			start := Append(t, c, noise, esdb.Any{}, Event("Noise", `{}`))
			for i := 0; i < 3; i++ {
				Append(t, c, wanted+fmt.Sprint(i), esdb.Any{}, Event("Kept"+tag, fmt.Sprint(i)))
				for j := 0; j < 20; j++ {
					Append(t, c, noise, esdb.Any{}, Event("Noise", `{}`))
				}
			}
			from := esdb.Position{Commit: start.CommitPosition, Prepare: start.PreparePosition}
			sub, err := c.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: from, Filter: tc.filter(tag), MaxSearchWindow: 10, CheckpointInterval: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			col := collect(sub)
			col.waitFor(t, "3 matching events and catch-up", func() bool { return len(col.events) == 3 && col.caughtUp })
			Append(t, c, wanted+"live", esdb.Any{}, Event("Kept"+tag, `live`))
			Append(t, c, noise, esdb.Any{}, Event("Noise", `{}`))
			col.waitFor(t, "live matching event", func() bool { return len(col.events) == 4 })
			col.mu.Lock()
			defer col.mu.Unlock()
			for i, e := range col.events {
				if !strings.HasPrefix(e.StreamID, wanted) {
					t.Fatalf("filter let through %s", describe(col.events))
				}
				if i > 0 && e.Position.Commit <= col.events[i-1].Position.Commit {
					t.Fatalf("out of order: %s", describe(col.events))
				}
			}
			// 60 noise events scanned with a window of 10: checkpoints must
			// have been sent, each at or past the previous one.
			if len(col.checks) < 3 {
				t.Fatalf("got %d checkpoints, want at least 3", len(col.checks))
			}
			for i := 1; i < len(col.checks); i++ {
				if col.checks[i].Commit < col.checks[i-1].Commit {
					t.Fatalf("checkpoints went backwards: %v", col.checks)
				}
			}
		})
	}
}

func positionsIncrease(t *testing.T, c *esdb.Client) {
	var last uint64
	for i := 0; i < 20; i++ {
		r := Append(t, c, Stream("pos"), esdb.Any{}, Event("P", `{}`), Event("P", `{}`))
		if r.CommitPosition <= last || r.PreparePosition > r.CommitPosition {
			t.Fatalf("append %d: position %d/%d after %d", i, r.CommitPosition, r.PreparePosition, last)
		}
		last = r.CommitPosition
	}
	evs := readAll(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 1<<62)
	for i := 1; i < len(evs); i++ {
		if evs[i].Position.Commit <= evs[i-1].Position.Commit {
			t.Fatalf("$all positions not increasing at %d: %d then %d", i, evs[i-1].Position.Commit, evs[i].Position.Commit)
		}
	}
}

func deleteAndTombstone(t *testing.T, c *esdb.Client) {
	s := Stream("del")
	Append(t, c, s, esdb.NoStream{}, Event("A", `0`), Event("A", `1`))
	_, err := c.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(0)})
	if err == nil {
		t.Fatal("delete with a stale expected revision succeeded")
	}
	if _, err := c.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	wantCode(t, "read of a soft-deleted stream", err, esdb.ErrorCodeResourceNotFound)
	r := Append(t, c, s, esdb.Any{}, Event("B", `2`))
	if r.NextExpectedVersion != 2 {
		t.Fatalf("recreated stream continues at %d, want 2", r.NextExpectedVersion)
	}

	ts := Stream("tomb")
	Append(t, c, ts, esdb.NoStream{}, Event("A", `0`))
	if _, err := c.TombstoneStream(ctx(t), ts, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	_, err = ReadStream(t, c, ts, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	wantCode(t, "read of a tombstoned stream", err, esdb.ErrorCodeStreamDeleted)
	_, err = c.TombstoneStream(ctx(t), ts, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
	wantCode(t, "second tombstone", err, esdb.ErrorCodeStreamDeleted)
	_, err = c.SubscribeToStream(ctx(t), ts, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	wantCode(t, "subscription to a tombstoned stream", err, esdb.ErrorCodeStreamDeleted)
}

func badInput(t *testing.T, c *esdb.Client) {
	s := Stream("bad")
	big := make([]byte, 600<<10)
	_, err := c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
		esdb.EventData{EventType: "Big", Data: big}, esdb.EventData{EventType: "Big", Data: big})
	if err == nil || !strings.Contains(err.Error(), "maximum") {
		t.Fatalf("an append over the maximum size: want a maximum-append-size error, got %v", err)
	}
	_, err = c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, esdb.EventData{EventType: "", Data: []byte("x")})
	if err == nil {
		t.Fatal("an event without a type was accepted")
	}
	_, err = c.AppendToStream(ctx(t), "", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, Event("A", `{}`))
	if err == nil {
		t.Fatal("an append without a stream name was accepted")
	}
	_, err = ReadStream(t, c, s, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	wantCode(t, "stream after refused appends", err, esdb.ErrorCodeResourceNotFound)
}
