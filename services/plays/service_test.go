package plays_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/services/plays"
	"github.com/fanfare/fanfare/services/plays/adapters"
	"github.com/fanfare/fanfare/services/plays/app"
	"github.com/fanfare/fanfare/services/plays/domain"
	"github.com/google/uuid"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t       *testing.T
	brokers []string
	store   *eventstore.Store
	key     ed25519.PrivateKey
	clock   *clock
	svc     *plays.Service
	url     string
	stop    func()
}

// newHarness starts the service on a fresh store and a simulated clock;
// withKafka also forwards the store's events to a broker it consumes from.
func newHarness(t *testing.T, withKafka ...bool) *harness {
	_, key, _ := ed25519.GenerateKey(nil)
	h := &harness{t: t, store: eventstore.NewStore(estest.Connect(t)), key: key, clock: &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}}
	if len(withKafka) > 0 && withKafka[0] {
		h.brokers = servicetest.Bus(t, h.store)
	}
	h.start()
	return h
}

func (h *harness) start() {
	svc, err := plays.New(context.Background(), plays.Config{Store: h.store, Brokers: h.brokers, IdentityKey: h.key.Public().(ed25519.PublicKey), Shards: 4,
		Now: h.clock.Now, ExpireEvery: time.Hour, SnapshotEvery: 5}) // small: restarts go through snapshots
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
	h.url, h.stop = servicetest.Serve(h.t, svc)
}

func (h *harness) as(id string, roles ...string) playsv1connect.PlaysServiceClient {
	return playsv1connect.NewPlaysServiceClient(http.DefaultClient, h.url, connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

var (
	ctx  = servicetest.Ctx
	code = servicetest.Code
)

func (h *harness) open(c playsv1connect.PlaysServiceClient, song string) string {
	h.t.Helper()
	r, err := c.StartSession(ctx(h.t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "node-1"}))
	if err != nil {
		h.t.Fatalf("start session: %v", err)
	}
	return r.Msg.SessionId
}

func beats(c playsv1connect.PlaysServiceClient, t *testing.T, hs ...*playsv1.Heartbeat) []*playsv1.HeartbeatResult {
	t.Helper()
	r, err := c.RecordHeartbeats(ctx(t), connect.NewRequest(&playsv1.RecordHeartbeatsRequest{Heartbeats: hs}))
	if err != nil {
		t.Fatalf("heartbeats: %v", err)
	}
	return r.Msg.Results
}

func TestSessionsCountOnceAtHalfCoverage(t *testing.T) {
	h := newHarness(t)
	song := uuid.NewString()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 180_000})
	alice := h.as("alice")
	s := h.open(alice, song)

	// Seek 0–60 s then 90–150 s, one heartbeat per 10 s of wall time: 120 s
	// of coverage; the play counts when it reaches 90 s (50%).
	var counted []uint64
	for i, from := range []uint64{0, 10, 20, 30, 40, 50, 90, 100, 110, 120, 130, 140} {
		h.clock.Advance(10 * time.Second)
		r := beats(alice, t, &playsv1.Heartbeat{SessionId: s, Seq: uint64(i + 1), FromMs: from * 1000, ToMs: from*1000 + 10_000})[0]
		if !r.Accepted || r.CreditedMs != 10_000 {
			t.Fatalf("heartbeat %d: %v", i+1, r)
		}
		if r.PlayNumber != 0 {
			counted = append(counted, r.PlayNumber)
			if r.CoverageMs != 90_000 {
				t.Fatalf("counted at %d ms of coverage, want 90000", r.CoverageMs)
			}
		}
	}
	if fmt.Sprint(counted) != "[1]" {
		t.Fatalf("play numbers %v, want [1]: a session counts once", counted)
	}
	// The chorus again adds nothing.
	h.clock.Advance(10 * time.Second)
	if r := beats(alice, t, &playsv1.Heartbeat{SessionId: s, Seq: 13, FromMs: 90_000, ToMs: 100_000})[0]; !r.Accepted || r.CoverageMs != 120_000 {
		t.Fatalf("chorus replay: %v", r)
	}
	got, err := alice.GetSession(ctx(t), connect.NewRequest(&playsv1.GetSessionRequest{SessionId: s}))
	if err != nil || got.Msg.CoverageMs != 120_000 || !got.Msg.Counted || got.Msg.PlayId != "play-"+s || got.Msg.LastSeq != 13 {
		t.Fatalf("session: %v %v", got, err)
	}

	// Refusals change nothing.
	h.clock.Advance(500 * time.Millisecond)
	cases := []struct {
		c      playsv1connect.PlaysServiceClient
		hb     *playsv1.Heartbeat
		reason string
	}{
		{alice, &playsv1.Heartbeat{SessionId: s, Seq: 14, FromMs: 0, ToMs: 1000}, "too_soon"},
		{alice, &playsv1.Heartbeat{SessionId: s, Seq: 13, FromMs: 0, ToMs: 1000}, "duplicate_or_old"},
		{alice, &playsv1.Heartbeat{SessionId: s, Seq: 20, FromMs: 5000, ToMs: 5000}, "bad_range"},
		{h.as("mallory"), &playsv1.Heartbeat{SessionId: s, Seq: 20, FromMs: 0, ToMs: 1000}, "forbidden"},
		{alice, &playsv1.Heartbeat{SessionId: "zz-nope", Seq: 1, FromMs: 0, ToMs: 1000}, "unknown_session"},
	}
	for _, c := range cases {
		if r := beats(c.c, t, c.hb)[0]; r.Accepted || r.Reason != c.reason {
			t.Errorf("want %s, got %v", c.reason, r)
		}
	}
	if _, err := alice.RecordHeartbeats(ctx(t), connect.NewRequest(&playsv1.RecordHeartbeatsRequest{})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("empty batch: %v", err)
	}
	if _, err := alice.RecordHeartbeats(ctx(t), connect.NewRequest(&playsv1.RecordHeartbeatsRequest{Heartbeats: make([]*playsv1.Heartbeat, 1001)})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("1001 heartbeats: %v", err)
	}
	// The wall-time cap: 10 s claimed 2 s after the last heartbeat credits 2.5 s.
	s2 := h.open(h.as("bob"), song)
	h.clock.Advance(2 * time.Second)
	if r := beats(h.as("bob"), t, &playsv1.Heartbeat{SessionId: s2, Seq: 1, FromMs: 0, ToMs: 10_000})[0]; !r.Accepted || r.CreditedMs != 2_500 {
		t.Fatalf("wall-time cap: %v", r)
	}
	if _, err := alice.StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: uuid.NewString(), NodeId: "n"})); code(err) != connect.CodeNotFound {
		t.Fatalf("unknown song: %v", err)
	}
	if _, err := alice.StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, ListenerId: "bob", NodeId: "n"})); code(err) != connect.CodePermissionDenied {
		t.Fatalf("opening for another listener: %v", err)
	}
}

// Many sessions of one hot song reaching 50% in the same instant get the
// play numbers 1..n, each once, and numbering continues after a restart.
func TestPlayNumbersAreExactUnderConcurrency(t *testing.T) {
	h := newHarness(t)
	song := uuid.NewString()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 20_000})
	const n = 40
	feeds := make([]feed, n)
	for i := range feeds {
		c := h.as(fmt.Sprint("listener-", i))
		feeds[i] = feed{h.open(c, song), c}
	}
	h.clock.Advance(10 * time.Second)
	numbers := countAll(t, feeds)
	// The log holds exactly n PlayCounted, numbered 1..n.
	if logged := loggedPlays(t, h.store, song); fmt.Sprint(logged) != fmt.Sprint(numbers) {
		t.Fatalf("logged play numbers %v differ from the answers %v", logged, numbers)
	}

	// A restarted service recovers sessions (from a snapshot and the
	// events after it) and counts on from n.
	if _, _, found, err := h.store.LoadSnapshot(ctx(t), adapters.ShardStream(adapters.ShardOf(song, 4))); err != nil || !found {
		t.Fatalf("no snapshot of the song's shard (%v)", err)
	}
	h.stop()
	h.start()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 20_000})
	got, err := h.as("listener-0").GetSession(ctx(t), connect.NewRequest(&playsv1.GetSessionRequest{SessionId: feeds[0].session}))
	if err != nil || !got.Msg.Counted || got.Msg.CoverageMs != 10_000 {
		t.Fatalf("recovered session: %v %v", got, err)
	}
	late := h.as("late")
	s := h.open(late, song)
	h.clock.Advance(10 * time.Second)
	if r := beats(late, t, &playsv1.Heartbeat{SessionId: s, Seq: 1, FromMs: 0, ToMs: 10_000})[0]; r.PlayNumber != n+1 {
		t.Fatalf("after restart, play number %d, want %d", r.PlayNumber, n+1)
	}
}

func TestOpenSessionsAreBoundedAndExpire(t *testing.T) {
	h := newHarness(t)
	song := uuid.NewString()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 60_000})
	alice := h.as("alice")
	rules := h.svc.App.Rules()
	var first string
	for i := 0; i < int(rules.MaxOpenSessions); i++ {
		s := h.open(alice, song)
		if first == "" {
			first = s
		}
	}
	if _, err := alice.StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "n"})); code(err) != connect.CodeResourceExhausted {
		t.Fatalf("one session too many: %v", err)
	}
	h.clock.Advance(rules.SessionTTL + time.Second)
	if r := beats(alice, t, &playsv1.Heartbeat{SessionId: first, Seq: 1, FromMs: 0, ToMs: 1000})[0]; r.Accepted || r.Reason != "expired" {
		t.Fatalf("heartbeat after the TTL: %v", r)
	}
	if err := h.svc.App.ExpireSessions(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.GetSession(ctx(t), connect.NewRequest(&playsv1.GetSessionRequest{SessionId: first})); code(err) != connect.CodeNotFound {
		t.Fatalf("an expired session is still open: %v", err)
	}
	h.open(alice, song) // room again
}

// The service learns songs (and their durations) from the registrar's
// events on Kafka, re-reading the topic at every start.
func TestSongsAreLearnedFromRegistrarEvents(t *testing.T) {
	h := newHarness(t, true)
	song := uuid.NewString()
	if _, err := h.store.Append(ctx(t), "song-"+song, esdb.Any{}, eventstore.Pending{Message: &eventsv1.SongRegistered{Version: 1,
		Description: &eventsv1.SongDescription{SongId: song, Title: "t", DurationMs: 42_000}}}); err != nil {
		t.Fatal(err)
	}
	waitStart := func() *playsv1.StartSessionResponse {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := h.as("alice").StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "n"}))
			if err == nil {
				return r.Msg
			}
			if code(err) != connect.CodeNotFound || time.Now().After(deadline) {
				t.Fatalf("start session of a registered song: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s := waitStart()
	got, err := h.as("alice").GetSession(ctx(t), connect.NewRequest(&playsv1.GetSessionRequest{SessionId: s.SessionId}))
	if err != nil || got.Msg.DurationMs != 42_000 {
		t.Fatalf("session of the learned song: %v %v", got, err)
	}
	h.stop()
	h.start()
	waitStart() // learned again after a restart
}

// A standard-tier song refuses a session to a listener whose FAN cannot
// cover the current burn, and says how much is needed.
func TestStandardTierSessionNeedsTheBurn(t *testing.T) {
	h := newHarness(t)
	song := uuid.NewString()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 20_000})
	burns := h.svc.App.Burns
	burns.SetDiscoveryMax(1) // play 2 on is the standard tier
	burns.SetBurn(5 * 100_000_000)
	minted := []*eventsv1.Posting{{Debit: "mint", Credit: "wallet:rich:FAN", Amount: 6 * 100_000_000},
		{Debit: "mint", Credit: "wallet:poor:FAN", Amount: 2 * 100_000_000}}
	burns.FAN.Apply(&eventsv1.BookBatchAppended{Asset: "FAN", Entries: []*eventsv1.BookBatchAppended_Entry{{Entry: &eventsv1.BookBatchAppended_Entry_Decision{
		Decision: &eventsv1.BookBatchAppended_Decision{
			Request: &eventsv1.LedgerTransactionRequested{Postings: minted},
			Outcome: &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{Postings: minted}}}}}}})

	// Play 1 is still discovery: anyone may listen.
	first := h.as("poor")
	s := h.open(first, song)
	h.clock.Advance(10 * time.Second)
	if r := beats(first, t, &playsv1.Heartbeat{SessionId: s, Seq: 1, FromMs: 0, ToMs: 10_000})[0]; r.PlayNumber != 1 {
		t.Fatalf("first play: %v", r)
	}
	_, err := first.StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "n"}))
	if code(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "burns 5.00000000 FAN") || !strings.Contains(err.Error(), "has 2.00000000 FAN") {
		t.Fatalf("a listener with 2 FAN opened a session that burns 5: %v", err)
	}
	h.open(h.as("rich"), song) // 6 FAN covers it
	burns.SetBurn(0)
	h.open(first, song) // no burn below the floor
}

// Two instances of the service on one store, as when it scales out: each
// opens half the sessions of one hot song, the other instance feeds them,
// and the plays are still numbered 1..n, each once.
func TestTwoInstancesNumberPlaysExactly(t *testing.T) {
	a := newHarness(t)
	b := &harness{t: t, store: a.store, key: a.key, clock: a.clock}
	b.start()
	song := uuid.NewString()
	for _, h := range []*harness{a, b} {
		h.svc.App.Songs.Put(song, app.Song{DurationMs: 20_000})
	}
	const n = 40
	feeds := make([]feed, n)
	for i := range feeds {
		listener := fmt.Sprint("listener-", i)
		opener, feeder := a, b
		if i%2 == 1 {
			opener, feeder = b, a
		}
		feeds[i] = feed{opener.open(opener.as(listener), song), feeder.as(listener)}
	}
	// Either instance shows any session.
	if v, err := a.as("listener-1").GetSession(ctx(t), connect.NewRequest(&playsv1.GetSessionRequest{SessionId: feeds[1].session})); err != nil || v.Msg.SongId != song {
		t.Fatalf("instance a shows a session b opened: %v %v", v, err)
	}
	a.clock.Advance(10 * time.Second)
	numbers := countAll(t, feeds)
	// The shard stream numbers them in order.
	if logged := loggedPlays(t, a.store, song); fmt.Sprint(logged) != fmt.Sprint(numbers) {
		t.Fatalf("the shard stream numbers the plays %v, want %v in order", logged, numbers)
	}
}

// feed is a session and the client that sends its heartbeats.
type feed struct {
	session string
	client  playsv1connect.PlaysServiceClient
}

// countAll sends each session a heartbeat that takes it to 50%, all at
// once, and checks that the plays got the numbers 1..n, each once.
func countAll(t *testing.T, feeds []feed) []int {
	t.Helper()
	var mu sync.Mutex
	var numbers []int
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := beats(f.client, t, &playsv1.Heartbeat{SessionId: f.session, Seq: 1, FromMs: 0, ToMs: 10_000})[0]
			if !r.Accepted {
				t.Errorf("heartbeat of %s refused: %s", f.session, r.Reason)
			}
			mu.Lock()
			numbers = append(numbers, int(r.PlayNumber))
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Ints(numbers)
	for i, got := range numbers {
		if got != i+1 {
			t.Fatalf("play numbers %v, want 1..%d each once", numbers, len(feeds))
		}
	}
	return numbers
}

// loggedPlays are the play numbers of song's PlayCounted in its shard
// stream, in stream order.
func loggedPlays(t *testing.T, store *eventstore.Store, song string) []int {
	t.Helper()
	var logged []int
	if _, err := store.ReadStream(ctx(t), adapters.ShardStream(adapters.ShardOf(song, 4)), 0, func(e eventstore.Event) error {
		if p, ok := e.Message.(*eventsv1.PlayCounted); ok && p.SongId == song {
			logged = append(logged, int(p.SongPlayNumber))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return logged
}

// Play rules are policy: a new version applies to heartbeats recorded after
// it, an older one changes nothing, and a restart keeps the rules in force.
func TestPlayRulesArePolicy(t *testing.T) {
	h := newHarness(t)
	song := uuid.NewString()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 40_000})
	alice := h.as("alice")
	before := h.open(alice, song)
	h.clock.Advance(10 * time.Second)
	if r := beats(alice, t, &playsv1.Heartbeat{SessionId: before, Seq: 1, FromMs: 0, ToMs: 10_000})[0]; !r.Accepted || r.PlayNumber != 0 {
		t.Fatalf("25%% under the default rules: %v", r)
	}
	quarter := domain.DefaultRules()
	quarter.CountCoveragePPM = 250_000
	quarter.MaxOpenSessions = 3
	if err := h.svc.App.ApplyPolicy(ctx(t), 2, quarter); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.App.ApplyPolicy(ctx(t), 1, domain.DefaultRules()); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Second)
	// The session already at 25% counts at its next heartbeat under v2.
	if r := beats(alice, t, &playsv1.Heartbeat{SessionId: before, Seq: 2, FromMs: 10_000, ToMs: 11_000})[0]; r.PlayNumber != 1 {
		t.Fatalf("a heartbeat after policy v2 (25%%): %v", r)
	}
	bad := quarter
	bad.CountCoveragePPM = 0
	if err := h.svc.App.ApplyPolicy(ctx(t), 3, bad); err == nil {
		t.Fatal("rules with a zero count threshold were applied")
	}
	h.stop()
	h.start()
	h.svc.App.Songs.Put(song, app.Song{DurationMs: 40_000})
	alice = h.as("alice")
	after := h.open(alice, song) // waits for the service to recover
	if got := h.svc.App.Rules(); got != quarter {
		t.Fatalf("after a restart the rules are %+v, want policy v2's %+v", got, quarter)
	}
	h.clock.Advance(10 * time.Second)
	if r := beats(alice, t, &playsv1.Heartbeat{SessionId: after, Seq: 1, FromMs: 0, ToMs: 10_000})[0]; r.PlayNumber != 2 {
		t.Fatalf("25%% after a restart under v2: %v", r)
	}
	h.open(alice, song) // 3 open sessions: the most v2 allows
	if _, err := alice.StartSession(ctx(t), connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "n"})); code(err) != connect.CodeResourceExhausted {
		t.Fatalf("a 4th open session under v2: %v", err)
	}
	// The policy event is in every shard stream, once.
	for shard := range 4 {
		var versions []uint64
		if _, err := h.store.ReadStream(ctx(t), adapters.ShardStream(shard), 0, func(e eventstore.Event) error {
			if p, ok := e.Message.(*eventsv1.PlayRulesApplied); ok {
				versions = append(versions, p.PolicyVersion)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(versions) != "[2]" {
			t.Fatalf("shard %d records play rules of versions %v, want [2]", shard, versions)
		}
	}
}

// Until the read models have caught up, a session waits, then is refused as
// unavailable rather than judged on half the songs and balances.
func TestSessionsWaitForTheReadModels(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	svc, err := plays.New(context.Background(), plays.Config{Store: eventstore.NewStore(estest.Connect(t)), IdentityKey: key.Public().(ed25519.PublicKey), Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	svc.App.ReadyWait = 50 * time.Millisecond
	svc.App.Songs.Put("s", app.Song{DurationMs: 1000})
	c := identity.With(context.Background(), identity.Identity{ID: "alice"})
	// Not running: nothing has caught up.
	if _, _, err := svc.App.StartSession(c, "s", "", "node"); apperr.KindOf(err) != apperr.Unavailable || !strings.Contains(err.Error(), "still reading") {
		t.Fatalf("a session before the read models caught up: %v", err)
	}
}
