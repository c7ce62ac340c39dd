package eventstored_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/freeport"
)

// The durability test runs the server in a child process (this test binary
// re-executed) so that it can be killed with SIGKILL.
const childDirEnv = "FANFARE_ESTEST_CHILD_DIR"
const childAddrEnv = "FANFARE_ESTEST_CHILD_ADDR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		srv, err := eventstored.Start(eventstored.Config{DataDir: dir, Listen: os.Getenv(childAddrEnv)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func connect(t testing.TB, url string) *esdb.Client {
	t.Helper()
	c, err := eventstore.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func start(t testing.TB, dir string) *eventstored.Server {
	t.Helper()
	srv, err := eventstored.Start(eventstored.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestUniversalSuite(t *testing.T) {
	srv := start(t, t.TempDir())
	estest.Run(t, connect(t, srv.URL()))
}

// TestRestartKeepsData closes and reopens the store: streams, revisions,
// positions and idempotency all survive.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	srv, err := eventstored.Start(eventstored.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv.URL())
	ev := estest.Event("A", `{"n":1}`)
	first := estest.Append(t, c, "keep-1", esdb.NoStream{}, ev)
	c.Close()
	srv.Close()

	srv2 := start(t, dir)
	c2 := connect(t, srv2.URL())
	again := estest.Append(t, c2, "keep-1", esdb.NoStream{}, ev) // a retry after restart
	if again.CommitPosition != first.CommitPosition {
		t.Fatalf("retry after restart answered position %d, first append was at %d", again.CommitPosition, first.CommitPosition)
	}
	next := estest.Append(t, c2, "keep-1", esdb.Revision(0), estest.Event("A", `{"n":2}`))
	if next.NextExpectedVersion != 1 || next.CommitPosition <= first.CommitPosition {
		t.Fatalf("after restart: revision %d position %d, want 1 and > %d", next.NextExpectedVersion, next.CommitPosition, first.CommitPosition)
	}
}

func freeAddr(t *testing.T) string {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childAddrEnv+"="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("event store child did not listen on %s", addr)
	return nil
}

type acked struct {
	stream string
	rev    uint64
	id     string
}

// TestKill9KeepsAcknowledgedEvents appends from several writers, kills the
// server process with SIGKILL mid-flight, restarts it on the same data and
// checks that every append the client saw succeed is there, twice over.
func TestKill9KeepsAcknowledgedEvents(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "esdb://" + addr + "?tls=false"
	var all []acked
	var mu sync.Mutex
	var lastPos, before uint64 // highest acknowledged position, overall and before this round
	// kills counts the SIGKILLs sent. A call in flight across a kill is
	// retried by the client against the restarted server, which answers the
	// repeated event id with the position it was first written at: only
	// calls that did not span a kill must land after every earlier one.
	var kills atomic.Int32
	var writers sync.WaitGroup
	for round := 0; round < 2; round++ {
		cmd := startChild(t, dir, addr)
		c := connect(t, url)
		stop := make(chan struct{})
		for w := 0; w < 8; w++ {
			writers.Add(1)
			go func(w int) {
				defer writers.Done()
				stream := fmt.Sprintf("kill-r%d-w%d", round, w)
				for i := uint64(0); ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ev := estest.Event("K", fmt.Sprint(i))
					gen := kills.Load()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					r, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, ev)
					cancel()
					if err != nil {
						return // the server is gone; what was not acknowledged may or may not be there
					}
					mu.Lock()
					all = append(all, acked{stream, r.NextExpectedVersion, ev.EventID.String()})
					if kills.Load() == gen && r.CommitPosition <= before {
						t.Errorf("position went backwards after restart: %d <= %d", r.CommitPosition, before)
					}
					if r.CommitPosition > lastPos {
						lastPos = r.CommitPosition
					}
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(700 * time.Millisecond)
		kills.Add(1)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		close(stop)
		// Writers caught mid-call return once their client reconnects to
		// the restarted server (the official client retries discovery), so
		// they are waited for after the restart, not before.
		mu.Lock()
		before = lastPos
		mu.Unlock()
	}
	if len(all) < 100 {
		t.Fatalf("only %d appends were acknowledged before the kills; the test proves too little", len(all))
	}
	startChild(t, dir, addr)
	writers.Wait()
	c := connect(t, url)
	mu.Lock()
	defer mu.Unlock()
	for _, a := range all {
		evs, err := estest.ReadStream(t, c, a.stream, esdb.ReadStreamOptions{From: esdb.Revision(a.rev)}, 1)
		if err != nil || len(evs) != 1 || evs[0].EventID.String() != a.id {
			t.Fatalf("acknowledged event %s at %s@%d is missing after kill -9 (err %v, got %d events)", a.id, a.stream, a.rev, err, len(evs))
		}
	}
	t.Logf("%d acknowledged appends all survived two kill -9s", len(all))
}
