// Package chaos holds tests that kill Fanfare's processes mid-flight and
// check that nothing is lost and nothing happens twice.
package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

const (
	roleEnv    = "FANFARE_CHAOS_ROLE"
	esEnv      = "FANFARE_CHAOS_ES"
	brokersEnv = "FANFARE_CHAOS_BROKERS"
	countEnv   = "FANFARE_CHAOS_COUNT"
	sources    = 10000
	consumer   = "proof-reactor"
)

var sourceNS = uuid.MustParse("0b6a4c1e-6d43-4c8e-9a1f-3f1f6f1ad001")

// The test binary doubles as the two processes of the proof.
func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "appender":
		runAppender()
	case "reactor":
		runReactor()
	case "accounts":
		runAccounts()
	case "crowdfund":
		runCrowdfund()
	}
	os.Exit(0)
}

func sourceStream(i int) string { return fmt.Sprintf("proof-%05d", i) }

func sourceID(i int) uuid.UUID { return uuid.NewSHA1(sourceNS, []byte(sourceStream(i))) }

func mustStore() *eventstore.Store {
	c, err := eventstore.Connect(os.Getenv(esEnv))
	if err != nil {
		panic(err)
	}
	return eventstore.NewStore(c)
}

func brokers() []string { return strings.Split(os.Getenv(brokersEnv), ",") }

func untilSignal() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	return ctx
}

// Process A appends the source events (again from the start after every
// restart: ids are deterministic and expected revisions exact, so the
// repeats are idempotent) and runs the forwarder.
func runAppender() {
	ctx := untilSignal()
	store := mustStore()
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers()})
	if err != nil {
		panic(err)
	}
	go func() {
		err := forwarder.Run(ctx, forwarder.Config{Store: store, Publisher: pub})
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "forwarder:", err)
			os.Exit(3)
		}
	}()
	var wg sync.WaitGroup
	const writers = 8
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < sources; i += writers {
				msg := &eventsv1.DepositRequested{DepositId: sourceStream(i)}
				for {
					_, err := store.Append(ctx, "deposit-"+sourceStream(i), esdb.NoStream{}, eventstore.Pending{ID: sourceID(i), Message: msg})
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(w)
	}
	wg.Wait()
	<-ctx.Done()
}

// proofDeposit is the reactor's aggregate: it only needs to record.
type proofDeposit struct{ eventstore.Recorder }

func (*proofDeposit) Apply(proto.Message) error { return nil }

// Process B reacts to each source event with one event of its own.
func runReactor() {
	ctx := untilSignal()
	store := mustStore()
	repo := eventstore.NewRepository(store, "deposit", func(string) *proofDeposit { return &proofDeposit{} }, eventstore.RepositoryOptions{Retries: 10})
	// A killed member holds its partitions until its session times out:
	// keep that short so the restarted one takes over soon.
	sub := kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 300 * time.Millisecond}
	react := kafka.Reaction(func(ctx context.Context, src events.Envelope, e *eventsv1.DepositRequested) error {
		return repo.React(ctx, e.DepositId, consumer, src, func(d *proofDeposit) error {
			d.Record(&eventsv1.DepositConfirmed{DepositId: e.DepositId, ConfirmedBy: consumer})
			return nil
		})
	})
	if err := kafka.RunGroups(ctx, brokers(), sub, kafka.HandlerGroup{Name: consumer, Handlers: []cqrs.GroupEventHandler{react}}); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(3)
	}
}

// infra starts the event store and the broker (both persisted) that the
// test's processes share, creates Fanfare's topics, and returns the
// environment that points child processes at them.
func infra(t *testing.T) (*eventstored.Server, *kafka.Broker, context.Context, []string) {
	srv, err := eventstored.Start(eventstored.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	broker := kafkatest.NewBrokerWith(t, kafka.BrokerConfig{DataDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	if err := kafka.EnsureTopics(ctx, broker.Brokers(), forwarder.Topics(), 12); err != nil {
		t.Fatal(err)
	}
	return srv, broker, ctx, []string{esEnv + "=" + srv.URL(), brokersEnv + "=" + strings.Join(broker.Brokers(), ",")}
}

type child struct {
	role string
	cmd  *exec.Cmd
}

func start(t *testing.T, role string, env []string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &child{role, cmd}
}

func (c *child) kill9(t *testing.T) {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
}

// TestKill9ExactlyOnceReactions: process A appends 10,000 source events
// and forwards them to Kafka; process B consumes them and appends one
// reaction each. Each process is killed with SIGKILL twice mid-run and
// restarted. In the end every source event has exactly one reaction.
func TestKill9ExactlyOnceReactions(t *testing.T) {
	srv, _, ctx, env := infra(t)

	es, err := eventstore.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	progress := func(typ string) int {
		n := 0
		rs, err := es.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for {
			ev, err := rs.Recv()
			if err != nil {
				return n
			}
			if ev.OriginalEvent().EventType == typ {
				n++
			}
		}
	}
	waitFor := func(what string, typ string, atLeast int) {
		for progress(typ) < atLeast {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s (%d of %d)", what, progress(typ), atLeast)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const requested, confirmed = "fanfare.accounts.v1.DepositRequested", "fanfare.accounts.v1.DepositConfirmed"

	a := start(t, "appender", env)
	b := start(t, "reactor", env)
	// Kill each process twice while work is in flight.
	waitFor("first sources", requested, 1500)
	a.kill9(t)
	a = start(t, "appender", env)
	waitFor("first reactions", confirmed, 1000)
	b.kill9(t)
	b = start(t, "reactor", env)
	waitFor("more sources", requested, 5000)
	a.kill9(t)
	start(t, "appender", env) // runs to the end; cleanup stops it
	waitFor("more reactions", confirmed, 4000)
	b.kill9(t)
	start(t, "reactor", env)

	waitFor("every reaction", confirmed, sources)
	time.Sleep(2 * time.Second) // room for a duplicate to show up

	// Exactly one source and one reaction per stream, the reaction's id
	// derived from its source's.
	perStream := map[string][]*esdb.RecordedEvent{}
	rs, err := es.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := rs.Recv()
		if err != nil {
			break
		}
		r := ev.OriginalEvent()
		if strings.HasPrefix(r.StreamID, "deposit-proof-") {
			perStream[r.StreamID] = append(perStream[r.StreamID], r)
		}
	}
	rs.Close()
	if len(perStream) != sources {
		t.Fatalf("%d source streams, want %d", len(perStream), sources)
	}
	for i := 0; i < sources; i++ {
		evs := perStream["deposit-"+sourceStream(i)]
		if len(evs) != 2 || evs[0].EventType != requested || evs[1].EventType != confirmed {
			var types []string
			for _, e := range evs {
				types = append(types, e.EventType)
			}
			t.Fatalf("%s has %v, want one source then one reaction", sourceStream(i), types)
		}
		if evs[0].EventID != sourceID(i) || evs[1].EventID != events.ReactionID(consumer, sourceID(i)) {
			t.Fatalf("%s: ids %s %s", sourceStream(i), evs[0].EventID, evs[1].EventID)
		}
	}
	t.Logf("%d sources, %d reactions, no gaps, no duplicates, after 2 kills of each process", sources, sources)
}
