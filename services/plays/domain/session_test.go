package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/plays/domain"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// t0 is when every test session starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const sec = time.Second

// started returns session "s1" of a song of dur ms, started at t0. Its
// events stay in the recorder (assertReplayEqual reads them).
func started(t *testing.T, dur uint64, rules domain.Rules) *domain.Session {
	t.Helper()
	s := domain.NewSession("s1")
	if err := s.Start("s1", "song1", "alice", "node7", dur, t0, rules); err != nil {
		t.Fatal(err)
	}
	return s
}

// beat sends one heartbeat at t0+at and returns its result.
func beat(t *testing.T, s *domain.Session, at time.Duration, seq, from, to uint64) domain.Result {
	t.Helper()
	res, err := s.Heartbeats([]domain.Heartbeat{{Seq: seq, FromMs: from, ToMs: to}}, t0.Add(at), domain.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func wantAccepted(t *testing.T, r domain.Result, credited, new uint64) {
	t.Helper()
	if r.Status != domain.Accepted || r.Reason != "" || r.CreditedMs != credited || r.NewMs != new {
		t.Fatalf("result %+v, want accepted crediting %d ms (%d new)", r, credited, new)
	}
}

func wantRefused(t *testing.T, r domain.Result, reason string) {
	t.Helper()
	if r.Status != domain.Refused || r.Reason != reason || r.CreditedMs != 0 || r.NewMs != 0 {
		t.Fatalf("result %+v, want refused %q", r, reason)
	}
}

func wantErr(t *testing.T, err, sentinel error, kind string) {
	t.Helper()
	if !errors.Is(err, sentinel) || apperr.KindOf(err) != kind {
		t.Fatalf("error %v (kind %q), want %v of kind %q", err, apperr.KindOf(err), sentinel, kind)
	}
	var k apperr.Kinded
	if !errors.As(err, &k) || k.KindName() != kind {
		t.Fatalf("error %v is not apperr.Kinded %q", err, kind)
	}
}

// assertReplayEqual flushes s's events (all of them since NewSession must
// still be in the recorder), applies them to a fresh session, rebuilds
// another from s.Events() (what a snapshot keeps), and checks that all
// three agree on their state and on the next heartbeat.
func assertReplayEqual(t *testing.T, s *domain.Session, rules domain.Rules) {
	t.Helper()
	r := domain.NewSession(s.ID())
	for _, e := range s.Flush() {
		if err := r.Apply(proto.Clone(e)); err != nil {
			t.Fatalf("replaying %T: %v", e, err)
		}
	}
	snap := domain.NewSession(s.ID())
	started, credited, counted := s.Events()
	for _, e := range []proto.Message{started, credited, counted} {
		if e == nil || !e.ProtoReflect().IsValid() {
			continue
		}
		if err := snap.Apply(proto.Clone(e)); err != nil {
			t.Fatalf("rebuilding from Events, %T: %v", e, err)
		}
	}
	for name, r := range map[string]*domain.Session{"replayed": r, "rebuilt from Events": snap} {
		if r.SongID() != s.SongID() || r.ListenerID() != s.ListenerID() || r.NodeID() != s.NodeID() || r.DurationMs() != s.DurationMs() ||
			r.LastSeq() != s.LastSeq() || r.CoverageMs() != s.CoverageMs() || !slices.Equal(r.Spans(), s.Spans()) ||
			r.Counted() != s.Counted() || r.PlayID() != s.PlayID() ||
			!r.ExpiresAt(rules).Equal(s.ExpiresAt(rules)) || r.Countable(rules) != s.Countable(rules) {
			t.Fatalf("%s session differs", name)
		}
		if name == "replayed" && r.Expired() != s.Expired() {
			t.Fatalf("replayed session differs on expiry")
		}
	}
	next := []domain.Heartbeat{{Seq: s.LastSeq() + 1, FromMs: 0, ToMs: s.DurationMs()}}
	at := s.ExpiresAt(rules).Add(-rules.SessionTTL / 2)
	a, errA := s.Heartbeats(next, at, rules)
	b, errB := r.Heartbeats(next, at, rules)
	if !slices.Equal(a, b) || (errA == nil) != (errB == nil) {
		t.Fatalf("next heartbeat: live %+v %v, replayed %+v %v", a, errA, b, errB)
	}
	if !s.Expired() { // a snapshot holds open sessions only
		c, errC := snap.Heartbeats(next, at, rules)
		if !slices.Equal(a, c) || (errA == nil) != (errC == nil) {
			t.Fatalf("next heartbeat: live %+v %v, rebuilt from Events %+v %v", a, errA, c, errC)
		}
	}
}

func TestStart(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 180_000, rules)
	evs := s.Flush()
	want := &eventsv1.SessionStarted{SessionId: "s1", SongId: "song1", ListenerId: "alice", NodeId: "node7",
		DurationMs: 180_000, ExpiresAt: timestamppb.New(t0.Add(5 * time.Minute)), StartedAt: timestamppb.New(t0)}
	if len(evs) != 1 || !proto.Equal(evs[0], want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	if !s.Started() || !s.ExpiresAt(rules).Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("started %v, expires %v", s.Started(), s.ExpiresAt(rules))
	}
	// Single use: the same id again, whatever the content, is a conflict.
	wantErr(t, s.Start("s1", "song1", "alice", "node7", 180_000, t0, rules), domain.ErrAlreadyStarted, apperr.Conflict)
	wantErr(t, s.Start("s1", "other", "bob", "node1", 1, t0.Add(sec), rules), domain.ErrAlreadyStarted, apperr.Conflict)
	if len(s.Flush()) != 0 {
		t.Fatal("a refused start recorded an event")
	}
}

func TestStartRefusesBadInput(t *testing.T) {
	rules := domain.DefaultRules()
	long := string(make([]byte, 129))
	for name, start := range map[string]func(*domain.Session) error{
		"empty session":  func(s *domain.Session) error { return s.Start("", "song", "l", "n", 1, t0, rules) },
		"empty song":     func(s *domain.Session) error { return s.Start("s1", "", "l", "n", 1, t0, rules) },
		"empty listener": func(s *domain.Session) error { return s.Start("s1", "song", "", "n", 1, t0, rules) },
		"empty node":     func(s *domain.Session) error { return s.Start("s1", "song", "l", "", 1, t0, rules) },
		"long song":      func(s *domain.Session) error { return s.Start("s1", long, "l", "n", 1, t0, rules) },
		"zero duration":  func(s *domain.Session) error { return s.Start("s1", "song", "l", "n", 0, t0, rules) },
		"other id":       func(s *domain.Session) error { return s.Start("s2", "song", "l", "n", 1, t0, rules) },
	} {
		s := domain.NewSession("s1")
		wantErr(t, start(s), domain.ErrInvalidInput, apperr.InvalidInput)
		if s.Started() || len(s.Flush()) != 0 {
			t.Errorf("%s: refused start changed the session", name)
		}
	}
	bad := rules
	bad.SessionTTL = 0
	wantErr(t, domain.NewSession("s1").Start("s1", "song", "l", "n", 1, t0, bad), domain.ErrInvalidRules, apperr.InvalidInput)
}

func TestHeartbeatsBeforeStart(t *testing.T) {
	s := domain.NewSession("s1")
	_, err := s.Heartbeats([]domain.Heartbeat{{Seq: 1, FromMs: 0, ToMs: 1000}}, t0, domain.DefaultRules())
	wantErr(t, err, domain.ErrNotStarted, apperr.NotFound)
	wantErr(t, s.Expire(t0, domain.DefaultRules()), domain.ErrNotStarted, apperr.NotFound)
	wantErr(t, s.Count("p1", 1, 1, domain.DefaultRules()), domain.ErrNotStarted, apperr.NotFound)
}

// A player that plays 0–60 s and then seeks to 90–150 s, sending one
// heartbeat every 10 s of wall time (each credits min(10 s + 500 ms, 10 s) =
// 10 s), covers exactly 120 s.
func TestSeekCovers120s(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 300_000, rules)
	seq := uint64(0)
	for i := range uint64(6) { // t0+10 s … t0+60 s: [0, 60 s)
		seq++
		wantAccepted(t, beat(t, s, time.Duration(i+1)*10*sec, seq, i*10_000, (i+1)*10_000), 10_000, 10_000)
	}
	for i := range uint64(6) { // t0+70 s … t0+120 s: [90 s, 150 s)
		seq++
		wantAccepted(t, beat(t, s, time.Duration(i+7)*10*sec, seq, 90_000+i*10_000, 100_000+i*10_000), 10_000, 10_000)
	}
	if s.CoverageMs() != 120_000 {
		t.Fatalf("coverage %d ms, want 120000", s.CoverageMs())
	}
	if want := []domain.Span{{FromMs: 0, ToMs: 60_000}, {FromMs: 90_000, ToMs: 150_000}}; !slices.Equal(s.Spans(), want) {
		t.Fatalf("spans %v, want %v", s.Spans(), want)
	}
	if s.Countable(rules) { // 120 s of a 300 s song is 40%
		t.Fatal("40% coverage is countable")
	}
	assertReplayEqual(t, s, rules)
}

func TestReplayingChorusAddsNothing(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 200_000, rules)
	for i := range uint64(6) {
		beat(t, s, time.Duration(i+1)*10*sec, i+1, i*10_000, (i+1)*10_000)
	}
	// The chorus at 30–40 s again, then again: credited, but adds nothing.
	wantAccepted(t, beat(t, s, 70*sec, 7, 30_000, 40_000), 10_000, 0)
	wantAccepted(t, beat(t, s, 80*sec, 8, 30_000, 40_000), 10_000, 0)
	if s.CoverageMs() != 60_000 {
		t.Fatalf("coverage %d, want 60000", s.CoverageMs())
	}
	evs := s.Flush()
	last := evs[len(evs)-1].(*eventsv1.HeartbeatsCredited)
	want := &eventsv1.HeartbeatsCredited{SessionId: "s1", LastSeq: 8, CoverageMs: 60_000, At: timestamppb.New(t0.Add(80 * sec)),
		Ranges: []*eventsv1.HeartbeatsCredited_Range{{FromMs: 30_000, ToMs: 40_000}}}
	if !proto.Equal(last, want) {
		t.Fatalf("event %v, want %v", last, want)
	}
}

func TestRateLimit(t *testing.T) {
	s := started(t, 200_000, domain.DefaultRules())
	wantAccepted(t, beat(t, s, 10*sec, 1, 0, 10_000), 10_000, 10_000)
	wantRefused(t, beat(t, s, 10*sec+999*time.Millisecond, 2, 10_000, 11_000), domain.ReasonTooSoon)
	wantRefused(t, beat(t, s, 10*sec, 2, 10_000, 11_000), domain.ReasonTooSoon)
	// A refused heartbeat consumes nothing: the same seq is fine 1 s later,
	// and the wall time counts from the last accepted heartbeat.
	wantAccepted(t, beat(t, s, 11*sec, 2, 10_000, 20_000), 1_500, 1_500)
	if s.LastSeq() != 2 {
		t.Fatalf("last seq %d", s.LastSeq())
	}
	// Several heartbeats of one session in one batch arrive at the same
	// time: only the first can be accepted.
	res, err := s.Heartbeats([]domain.Heartbeat{{Seq: 3, FromMs: 11_500, ToMs: 21_500}, {Seq: 4, FromMs: 21_500, ToMs: 31_500}},
		t0.Add(21*sec), domain.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	wantAccepted(t, res[0], 10_000, 10_000)
	wantRefused(t, res[1], domain.ReasonTooSoon)
	if res[0].Seq != 3 || res[1].Seq != 4 {
		t.Fatalf("results out of order: %+v", res)
	}
}

func TestWallTimeCap(t *testing.T) {
	s := started(t, 200_000, domain.DefaultRules())
	wantAccepted(t, beat(t, s, 10*sec, 1, 0, 10_000), 10_000, 10_000)
	// Claims 10 s after 2 s of wall time: credited 2 s + 500 ms slack.
	wantAccepted(t, beat(t, s, 12*sec, 2, 10_000, 20_000), 2_500, 2_500)
	// Wall time is floored to whole milliseconds.
	wantAccepted(t, beat(t, s, 14*sec+1_999_999*time.Nanosecond, 3, 12_500, 20_000), 2_501, 2_501)
	if s.CoverageMs() != 15_001 {
		t.Fatalf("coverage %d", s.CoverageMs())
	}
}

func TestFirstHeartbeatCountsFromStart(t *testing.T) {
	s := started(t, 200_000, domain.DefaultRules())
	wantAccepted(t, beat(t, s, 3*sec, 1, 0, 10_000), 3_500, 3_500)
	// The first heartbeat is not rate-limited against the start.
	s = started(t, 200_000, domain.DefaultRules())
	wantAccepted(t, beat(t, s, 0, 1, 0, 10_000), 500, 500)
}

func TestMaxCreditCap(t *testing.T) {
	s := started(t, 200_000, domain.DefaultRules())
	wantAccepted(t, beat(t, s, 60*sec, 1, 0, 60_000), 10_000, 10_000)
	wantAccepted(t, beat(t, s, 70*sec+400*time.Millisecond, 2, 10_000, 30_000), 10_000, 10_000)
	// The duration caps too: 5 s left of the song.
	wantAccepted(t, beat(t, s, 90*sec, 3, 195_000, 205_000), 5_000, 5_000)
}

func TestCountsOnce(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 41_000, rules) // threshold 20.5 s
	wantAccepted(t, beat(t, s, 10*sec, 1, 0, 10_000), 10_000, 10_000)
	if s.ReachedCount() || s.Countable(rules) {
		t.Fatal("countable at 10 s of 41 s")
	}
	wantErr(t, s.Count("p1", 1, 1, rules), domain.ErrNotCountable, apperr.Forbidden)
	wantAccepted(t, beat(t, s, 20*sec, 2, 10_000, 20_000), 10_000, 10_000)
	if s.ReachedCount() {
		t.Fatal("countable at 20 s of 41 s")
	}
	wantAccepted(t, beat(t, s, 21*sec, 3, 20_000, 20_500), 500, 500) // exactly 50%
	if !s.ReachedCount() || !s.Countable(rules) {
		t.Fatal("not countable at exactly 50%")
	}
	wantErr(t, s.Count("", 1, 1, rules), domain.ErrInvalidInput, apperr.InvalidInput)
	wantErr(t, s.Count("p1", 0, 1, rules), domain.ErrInvalidInput, apperr.InvalidInput)
	wantErr(t, s.Count("p1", 1, 0, rules), domain.ErrInvalidInput, apperr.InvalidInput)
	if err := s.Count("p1", 10_001, 3, rules); err != nil {
		t.Fatal(err)
	}
	if !s.Counted() || s.PlayID() != "p1" || s.Countable(rules) {
		t.Fatalf("counted %v, play %q", s.Counted(), s.PlayID())
	}
	wantErr(t, s.Count("p2", 10_002, 4, rules), domain.ErrAlreadyCounted, apperr.Conflict)
	// Later heartbeats are credited and keep the session alive, but never
	// report the count again.
	wantAccepted(t, beat(t, s, 31*sec, 4, 20_500, 30_500), 10_000, 10_000)
	if s.ReachedCount() {
		t.Fatal("ReachedCount true twice")
	}
	evs := s.Flush()
	var counted []*eventsv1.PlayCounted
	for _, e := range evs {
		if c, ok := e.(*eventsv1.PlayCounted); ok {
			counted = append(counted, c)
		}
	}
	want := &eventsv1.PlayCounted{PlayId: "p1", SessionId: "s1", SongId: "song1", ListenerId: "alice", NodeId: "node7",
		SongPlayNumber: 10_001, ListenerPlayNumber: 3, CoverageMs: 20_500}
	if len(counted) != 1 || !proto.Equal(counted[0], want) {
		t.Fatalf("PlayCounted events %v, want one %v", counted, want)
	}
	r := domain.NewSession("s1")
	for _, e := range evs {
		if err := r.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, r.Count("p2", 10_002, 4, rules), domain.ErrAlreadyCounted, apperr.Conflict)
}

// ReachedCount is about the last call: a batch that refuses everything, or
// a session loaded from events, reports false.
func TestReachedCountIsPerCall(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 10_000, rules)
	wantAccepted(t, beat(t, s, 6*sec, 1, 0, 6_000), 6_000, 6_000)
	if !s.ReachedCount() {
		t.Fatal("not reached at 60%")
	}
	wantRefused(t, beat(t, s, 6*sec, 2, 6_000, 7_000), domain.ReasonTooSoon)
	if s.ReachedCount() {
		t.Fatal("still reached after a refused batch")
	}
	if !s.Countable(rules) {
		t.Fatal("not countable")
	}
	assertReplayEqual(t, s, rules)
}

func TestExpiry(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 200_000, rules)
	ttl := rules.SessionTTL
	// Without heartbeats the session expires TTL after the start.
	if err := s.Expire(t0.Add(ttl), rules); err != nil || s.Expired() {
		t.Fatalf("expired at exactly expires_at: %v", err)
	}
	// Each accepted heartbeat extends it to its time + TTL.
	wantAccepted(t, beat(t, s, ttl, 1, 0, 10_000), 10_000, 10_000)
	if !s.ExpiresAt(rules).Equal(t0.Add(2 * ttl)) {
		t.Fatalf("expires at %v", s.ExpiresAt(rules))
	}
	if err := s.Expire(t0.Add(2*ttl), rules); err != nil || s.Expired() {
		t.Fatalf("expired before its expiry: %v", err)
	}
	// Past the expiry but not yet expired: heartbeats are refused.
	wantRefused(t, beat(t, s, 2*ttl+time.Nanosecond, 2, 10_000, 20_000), domain.ReasonExpired)
	assertReplayEqual(t, s, rules)

	s = started(t, 200_000, rules)
	wantAccepted(t, beat(t, s, 10*sec, 1, 0, 10_000), 10_000, 10_000)
	s.Flush()
	at := t0.Add(10*sec + ttl + time.Nanosecond)
	if err := s.Expire(at, rules); err != nil || !s.Expired() {
		t.Fatalf("not expired: %v", err)
	}
	if err := s.Expire(at.Add(time.Hour), rules); err != nil {
		t.Fatal(err)
	}
	evs := s.Flush()
	if want := (&eventsv1.SessionExpired{SessionId: "s1", ListenerId: "alice"}); len(evs) != 1 || !proto.Equal(evs[0], want) {
		t.Fatalf("events %v, want one %v", evs, want)
	}
	// An expired session refuses heartbeats even at a time before its expiry
	// (a late batch) and cannot count.
	wantRefused(t, beat(t, s, 11*sec, 2, 10_000, 11_000), domain.ReasonExpired)
	wantErr(t, s.Count("p1", 1, 1, rules), domain.ErrSessionExpired, apperr.Conflict)
}

func TestExpiredCountedSessionSaysSo(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 10_000, rules)
	beat(t, s, 6*sec, 1, 0, 6_000)
	if err := s.Count("p1", 1, 1, rules); err != nil {
		t.Fatal(err)
	}
	if err := s.Expire(t0.Add(6*sec+rules.SessionTTL+1), rules); err != nil {
		t.Fatal(err)
	}
	evs := s.Flush()
	if e, ok := evs[len(evs)-1].(*eventsv1.SessionExpired); !ok || !e.Counted {
		t.Fatalf("last event %v, want SessionExpired counted", evs[len(evs)-1])
	}
}

func TestRefusalReasons(t *testing.T) {
	rules := domain.DefaultRules()
	s := started(t, 100_000, rules)
	wantAccepted(t, beat(t, s, 10*sec, 5, 0, 10_000), 10_000, 10_000)
	s.Flush()
	for _, c := range []struct {
		name   string
		at     time.Duration
		hb     domain.Heartbeat
		reason string
	}{
		{"repeated seq", 20 * sec, domain.Heartbeat{Seq: 5, FromMs: 10_000, ToMs: 20_000}, domain.ReasonDuplicateOrOld},
		{"older seq", 20 * sec, domain.Heartbeat{Seq: 4, FromMs: 10_000, ToMs: 20_000}, domain.ReasonDuplicateOrOld},
		{"seq 0", 20 * sec, domain.Heartbeat{Seq: 0, FromMs: 10_000, ToMs: 20_000}, domain.ReasonDuplicateOrOld},
		{"empty range", 20 * sec, domain.Heartbeat{Seq: 6, FromMs: 10_000, ToMs: 10_000}, domain.ReasonBadRange},
		{"reversed range", 20 * sec, domain.Heartbeat{Seq: 6, FromMs: 20_000, ToMs: 10_000}, domain.ReasonBadRange},
		{"from at the end", 20 * sec, domain.Heartbeat{Seq: 6, FromMs: 100_000, ToMs: 110_000}, domain.ReasonBadRange},
		{"from past the end", 20 * sec, domain.Heartbeat{Seq: 6, FromMs: 1 << 40, ToMs: 1<<40 + 1}, domain.ReasonBadRange},
		{"too soon", 10*sec + 500*time.Millisecond, domain.Heartbeat{Seq: 6, FromMs: 10_000, ToMs: 11_000}, domain.ReasonTooSoon},
		{"expired", 10*sec + rules.SessionTTL + 1, domain.Heartbeat{Seq: 6, FromMs: 10_000, ToMs: 11_000}, domain.ReasonExpired},
		// Checked in order: expiry first, then seq, then range, then rate.
		{"expired and repeated", 10*sec + rules.SessionTTL + 1, domain.Heartbeat{Seq: 5, FromMs: 9, ToMs: 1}, domain.ReasonExpired},
		{"repeated and bad range", 10*sec + 1, domain.Heartbeat{Seq: 5, FromMs: 9, ToMs: 1}, domain.ReasonDuplicateOrOld},
		{"bad range and too soon", 10*sec + 1, domain.Heartbeat{Seq: 6, FromMs: 9, ToMs: 1}, domain.ReasonBadRange},
	} {
		wantRefused(t, beat(t, s, c.at, c.hb.Seq, c.hb.FromMs, c.hb.ToMs), c.reason)
		if evs := s.Flush(); len(evs) != 0 || s.LastSeq() != 5 || s.CoverageMs() != 10_000 {
			t.Fatalf("%s: a refused heartbeat changed the session (%d events)", c.name, len(evs))
		}
	}
	_, err := s.Heartbeats(nil, t0.Add(20*sec), domain.Rules{})
	wantErr(t, err, domain.ErrInvalidRules, apperr.InvalidInput)
	if res, err := s.Heartbeats(nil, t0.Add(20*sec), rules); err != nil || len(res) != 0 || len(s.Flush()) != 0 {
		t.Fatalf("empty batch: %v %v", res, err)
	}
}

func TestApplyRejectsEventsThatDoNotFit(t *testing.T) {
	start := &eventsv1.SessionStarted{SessionId: "s1", SongId: "x", ListenerId: "l", NodeId: "n", DurationMs: 1000,
		ExpiresAt: timestamppb.New(t0)}
	at := timestamppb.New(t0)
	for name, evs := range map[string][]proto.Message{
		"beats before start": {&eventsv1.HeartbeatsCredited{SessionId: "s1", At: at}},
		"started twice":      {start, start},
		"other session":      {&eventsv1.SessionStarted{SessionId: "s2"}},
		"wrong coverage": {start, &eventsv1.HeartbeatsCredited{SessionId: "s1", At: at, CoverageMs: 10,
			Ranges: []*eventsv1.HeartbeatsCredited_Range{{FromMs: 0, ToMs: 9}}}},
		"beats without at":  {start, &eventsv1.HeartbeatsCredited{SessionId: "s1"}},
		"beats of another":  {start, &eventsv1.HeartbeatsCredited{SessionId: "s2", At: at}},
		"count of another":  {start, &eventsv1.PlayCounted{SessionId: "s2"}},
		"expiry of another": {start, &eventsv1.SessionExpired{SessionId: "s2"}},
		"foreign event":     {start, &eventsv1.SongUnlocked{}},
	} {
		s := domain.NewSession("s1")
		var err error
		for _, e := range evs {
			if err = s.Apply(e); err != nil {
				break
			}
		}
		if err == nil {
			t.Errorf("%s: applied", name)
		}
	}
}

// Property: for random sessions (random wall steps, seqs, ranges, rules),
// every accepted heartbeat respects the rate limit and the caps, the new ms
// sum to the coverage, and a replay gives the same session.
func TestHeartbeatProperties(t *testing.T) {
	seed := [32]byte{7}
	data := make([]byte, 6*64)
	for round := range 300 {
		seed[1], seed[2] = byte(round), byte(round>>8)
		fill(seed, data)
		rules := domain.DefaultRules()
		if round%3 == 1 {
			rules.Slack, rules.MinInterval, rules.MaxCredit = 0, 0, 3*sec
		}
		checkHeartbeatRun(t, uint64(1+round*997%400_000), rules, data)
	}
}

func TestRules(t *testing.T) {
	d := domain.DefaultRules()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.PlayRules{CountCoveragePpm: 500_000, HeartbeatMinIntervalMs: 1000, HeartbeatSlackMs: 500,
		HeartbeatMaxCreditMs: 10_000, SessionTtlMs: 300_000, MaxOpenSessions: 8}
	if !proto.Equal(d.Proto(), want) {
		t.Fatalf("Proto %v, want %v", d.Proto(), want)
	}
	back, err := domain.RulesFromProto(want)
	if err != nil || back != d {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if r, err := domain.RulesFromProto(nil); err != nil || r != d {
		t.Fatalf("nil rules: %+v %v", r, err)
	}
	for name, mut := range map[string]func(*domain.Rules){
		"ppm 0":          func(r *domain.Rules) { r.CountCoveragePPM = 0 },
		"ppm > 1e6":      func(r *domain.Rules) { r.CountCoveragePPM = 1_000_001 },
		"negative slack": func(r *domain.Rules) { r.Slack = -1 },
		"sub-ms slack":   func(r *domain.Rules) { r.Slack = time.Millisecond + 1 },
		"zero credit":    func(r *domain.Rules) { r.MaxCredit = 0 },
		"zero TTL":       func(r *domain.Rules) { r.SessionTTL = 0 },
		"huge TTL":       func(r *domain.Rules) { r.SessionTTL = 400 * 24 * time.Hour },
		"zero sessions":  func(r *domain.Rules) { r.MaxOpenSessions = 0 },
	} {
		r := d
		mut(&r)
		if err := r.Validate(); !errors.Is(err, domain.ErrInvalidRules) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	bad := proto.Clone(want).(*eventsv1.PlayRules)
	bad.SessionTtlMs = 1 << 62
	if _, err := domain.RulesFromProto(bad); !errors.Is(err, domain.ErrInvalidRules) {
		t.Errorf("huge TTL from proto: %v", err)
	}
}
