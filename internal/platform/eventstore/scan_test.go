package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/google/uuid"
)

// ScanAll gives exactly what the official client reads from $all: every
// event, in order, with the same stream, revision, position, id, type, data
// and metadata, including events too big for its slabs, empty ones and the
// store's own; and what it handed over stays intact after the scan.
func TestScanAllReadsWhatTheClientReads(t *testing.T) {
	client, url := estest.ConnectURL(t)
	c := ctx(t)
	var appended int
	for i := range 3000 {
		size := i % 700
		switch i {
		case 17:
			size = 400 << 10 // its own copy, beside the slabs
		case 18:
			size = 0
		}
		data := bytes.Repeat([]byte{byte(i)}, size)
		var meta []byte
		if i%3 != 0 {
			meta = []byte(fmt.Sprintf(`{"n":%d}`, i))
		}
		ev := esdb.EventData{EventID: uuid.New(), EventType: fmt.Sprint("type-", i%7), ContentType: esdb.ContentTypeBinary, Data: data, Metadata: meta}
		if _, err := client.AppendToStream(c, fmt.Sprint("scan-", i%13), esdb.AppendToStreamOptions{}, ev); err != nil {
			t.Fatal(err)
		}
		appended++
	}

	rs, err := client.ReadAll(c, esdb.ReadAllOptions{From: esdb.Start{}}, ^uint64(0)>>1)
	if err != nil {
		t.Fatal(err)
	}
	var want []*esdb.RecordedEvent
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, re.OriginalEvent())
	}
	rs.Close()

	head, err := eventstore.HeadPosition(c, url)
	if err != nil || head != want[len(want)-1].Position.Commit {
		t.Fatalf("head position %d, %v; the last event is at %d", head, err, want[len(want)-1].Position.Commit)
	}
	var got []eventstore.RawEvent
	batches := 0
	if err := eventstore.ScanAll(c, url, func(b []eventstore.RawEvent) error {
		batches++
		got = append(got, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) < appended {
		t.Fatalf("scan gave %d events, the client %d (%d appended)", len(got), len(want), appended)
	}
	if batches < 2 {
		t.Fatalf("%d events came in %d batch(es)", len(got), batches)
	}
	for i, w := range want {
		g := got[i]
		if g.Stream != w.StreamID || g.Revision != w.EventNumber || g.Position != w.Position.Commit || g.ID != w.EventID ||
			g.Type != w.EventType || !bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.Metadata, w.UserMetadata) {
			t.Fatalf("event %d: scan %s@%d pos %d id %s %s (%d bytes, meta %q); client %s@%d pos %d id %s %s (%d bytes, meta %q)",
				i, g.Stream, g.Revision, g.Position, g.ID, g.Type, len(g.Data), g.Metadata,
				w.StreamID, w.EventNumber, w.Position.Commit, w.EventID, w.EventType, len(w.Data), w.UserMetadata)
		}
	}
}

// An error from fn stops the scan and comes back as it is; an unreachable
// store and a bad connection string are errors, not hangs.
func TestScanAllStopsOnErrors(t *testing.T) {
	client, url := estest.ConnectURL(t)
	c := ctx(t)
	for i := range 2000 {
		if _, err := client.AppendToStream(c, "stop", esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "x", ContentType: esdb.ContentTypeBinary, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, url := estest.ConnectURL(t); true {
		if head, err := eventstore.HeadPosition(c, url); err != nil || head != 0 {
			t.Fatalf("head of an empty store: %d, %v", head, err)
		}
	}
	stop := errors.New("enough")
	calls := 0
	err := eventstore.ScanAll(c, url, func([]eventstore.RawEvent) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn failing: err %v after %d calls", err, calls)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = eventstore.ScanAll(c, "esdb://"+addr+"?tls=false", func([]eventstore.RawEvent) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "read $all") {
		t.Fatalf("unreachable store: %v", err)
	}
	if err := eventstore.ScanAll(c, "http://nope", func([]eventstore.RawEvent) error { return nil }); err == nil || !strings.Contains(err.Error(), "event store url") {
		t.Fatalf("bad url: %v", err)
	}
	cancelled, cancel := context.WithCancel(c)
	cancel()
	if err := eventstore.ScanAll(cancelled, url, func([]eventstore.RawEvent) error { return nil }); !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "context canceled")) {
		t.Fatalf("cancelled context: %v", err)
	}
}
