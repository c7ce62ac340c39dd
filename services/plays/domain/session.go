package domain

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Span is a half-open range of a song, [FromMs, ToMs), in milliseconds.
type Span struct {
	FromMs, ToMs uint64
}

// Len is the span's length in milliseconds.
func (s Span) Len() uint64 { return s.ToMs - s.FromMs }

// Coverage is the union of half-open ranges of a song, clamped to
// [0, duration). It is kept as sorted, disjoint, non-touching spans, so its
// size is bounded by the number of gaps, never by the number of ranges
// added. The zero value covers a song of duration 0 (nothing); use
// [NewCoverage].
type Coverage struct {
	durationMs uint64
	total      uint64
	spans      []Span
}

// NewCoverage returns an empty coverage of a song of durationMs.
func NewCoverage(durationMs uint64) *Coverage { return &Coverage{durationMs: durationMs} }

// Add covers [fromMs, toMs) clamped to the duration and returns how many
// milliseconds were not covered before. An empty range adds nothing.
func (c *Coverage) Add(fromMs, toMs uint64) uint64 {
	toMs = min(toMs, c.durationMs)
	if fromMs >= toMs {
		return 0
	}
	// spans[i:j] overlap or touch [fromMs, toMs): they merge with it.
	i, _ := slices.BinarySearchFunc(c.spans, fromMs, func(s Span, from uint64) int {
		if s.ToMs < from {
			return -1
		}
		return 1
	})
	j, _ := slices.BinarySearchFunc(c.spans[i:], toMs, func(s Span, to uint64) int {
		if s.FromMs <= to {
			return -1
		}
		return 1
	})
	j += i
	if i == j {
		c.spans = slices.Insert(c.spans, i, Span{FromMs: fromMs, ToMs: toMs})
		c.total += toMs - fromMs
		return toMs - fromMs
	}
	merged := Span{FromMs: min(fromMs, c.spans[i].FromMs), ToMs: max(toMs, c.spans[j-1].ToMs)}
	var old uint64
	for _, s := range c.spans[i:j] {
		old += s.Len()
	}
	c.spans[i] = merged
	c.spans = slices.Delete(c.spans, i+1, j)
	added := merged.Len() - old
	c.total += added
	return added
}

// Total is the covered length in milliseconds.
func (c *Coverage) Total() uint64 { return c.total }

// DurationMs is the song duration the coverage is clamped to.
func (c *Coverage) DurationMs() uint64 { return c.durationMs }

// Spans returns a copy of the covered spans, sorted, disjoint and not
// touching one another.
func (c *Coverage) Spans() []Span { return slices.Clone(c.spans) }

// Clone returns an independent copy.
func (c *Coverage) Clone() *Coverage {
	return &Coverage{durationMs: c.durationMs, total: c.total, spans: slices.Clone(c.spans)}
}

// Reaches reports whether the coverage is at least ppm parts per million of
// the duration (exact 128-bit arithmetic). A song of duration 0 is never
// reached.
func (c *Coverage) Reaches(ppm uint32) bool {
	if c.durationMs == 0 {
		return false
	}
	hi1, lo1 := bits.Mul64(c.total, 1_000_000)
	hi2, lo2 := bits.Mul64(uint64(ppm), c.durationMs)
	return hi1 > hi2 || hi1 == hi2 && lo1 >= lo2
}

// Heartbeat is one heartbeat of a player: it played [FromMs, ToMs) of the
// song since its previous heartbeat. Seq starts at 1 and increases.
type Heartbeat struct {
	Seq, FromMs, ToMs uint64
}

// Status is the outcome of one heartbeat.
type Status uint8

const (
	// Accepted: the heartbeat credited a range (possibly shortened by the
	// caps, possibly adding nothing new to the coverage).
	Accepted Status = iota + 1
	// Refused: the heartbeat changed nothing; Result.Reason says why.
	Refused
)

func (s Status) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case Refused:
		return "refused"
	}
	return "unspecified"
}

// Reasons a heartbeat is refused, checked in this order.
const (
	// ReasonExpired: the session expired (or is past its expiry).
	ReasonExpired = "expired"
	// ReasonDuplicateOrOld: seq is not above the last accepted seq (seq 0
	// is always refused).
	ReasonDuplicateOrOld = "duplicate_or_old"
	// ReasonBadRange: from ≥ to, or from is not inside the song.
	ReasonBadRange = "bad_range"
	// ReasonTooSoon: less than the minimum interval after the previous
	// accepted heartbeat.
	ReasonTooSoon = "too_soon"
)

// Result is the outcome of one heartbeat, in the order of the batch.
type Result struct {
	Seq    uint64
	Status Status
	// Reason is one of the Reason constants when Refused, else "".
	Reason string
	// CreditedMs is the length of the credited range after the caps and the
	// duration clamp.
	CreditedMs uint64
	// NewMs is how much of the credited range was not covered before.
	NewMs uint64
}

// Session is the aggregate of one listening session (stream
// session-<id>): its heartbeats, coverage, count and expiry. Build one with
// [NewSession] (or use the zero value) and feed it its events with Apply, or
// run a command; commands record events through the embedded Recorder.
type Session struct {
	events.Recorder
	id         string
	songID     string
	listenerID string
	nodeID     string
	durationMs uint64
	started    bool
	// startExpiry is SessionStarted.expires_at; startedAt its started_at
	// (zero in sessions recorded before the field existed).
	startExpiry time.Time
	startedAt   time.Time
	// beats says a heartbeat was accepted; lastAt is when the last one was.
	beats   bool
	lastAt  time.Time
	lastSeq uint64
	cov     Coverage
	counted bool
	playID  string
	expired bool
	// reached is set by Heartbeats when its batch made the session countable.
	reached bool
}

// NewSession returns an empty session with the given id (a repository
// factory); Start must use the same id.
func NewSession(id string) *Session { return &Session{id: id} }

// ID, SongID, ListenerID, NodeID and DurationMs describe the session.
func (s *Session) ID() string         { return s.id }
func (s *Session) SongID() string     { return s.songID }
func (s *Session) ListenerID() string { return s.listenerID }
func (s *Session) NodeID() string     { return s.nodeID }
func (s *Session) DurationMs() uint64 { return s.durationMs }

// Started reports whether the session was started.
func (s *Session) Started() bool { return s.started }

// LastSeq is the highest accepted heartbeat seq (0 before any).
func (s *Session) LastSeq() uint64 { return s.lastSeq }

// CoverageMs is the covered length of the song in milliseconds.
func (s *Session) CoverageMs() uint64 { return s.cov.Total() }

// Spans returns the covered spans of the song.
func (s *Session) Spans() []Span { return s.cov.Spans() }

// Counted reports whether the session counted as a play; PlayID is that
// play's id.
func (s *Session) Counted() bool  { return s.counted }
func (s *Session) PlayID() string { return s.playID }

// Expired reports whether SessionExpired was recorded.
func (s *Session) Expired() bool { return s.expired }

// ExpiresAt is when the session expires without further heartbeats: the last
// accepted heartbeat + rules.SessionTTL, or SessionStarted.expires_at before
// any heartbeat.
func (s *Session) ExpiresAt(rules Rules) time.Time {
	if s.beats {
		return s.lastAt.Add(rules.SessionTTL)
	}
	return s.startExpiry
}

// Countable reports whether the session may count now: started, not expired,
// not counted, and coverage at the threshold of rules.
func (s *Session) Countable(rules Rules) bool {
	return s.started && !s.expired && !s.counted && s.cov.Reaches(rules.CountCoveragePPM)
}

// ReachedCount reports whether the last [Session.Heartbeats] call accepted
// a heartbeat and left the uncounted session at or past the count
// threshold: the caller answers with [Session.Count], so it is true after
// exactly one Heartbeats call in the life of a session that counts.
func (s *Session) ReachedCount() bool { return s.reached }

// maxIDLen bounds session, song, listener, node and play ids.
const maxIDLen = 128

// Start opens the session and records SessionStarted, expiring at now +
// rules.SessionTTL. Errors: [ErrAlreadyStarted] (conflict) when the session
// id was used before; [ErrInvalidInput] for an empty or long id, a zero
// duration or an id other than the one the session was made with;
// [ErrInvalidRules].
func (s *Session) Start(sessionID, songID, listenerID, nodeID string, durationMs uint64, now time.Time, rules Rules) error {
	if s.started {
		return kinded(apperr.Conflict, ErrAlreadyStarted, fmt.Sprintf("session %s was started before; session ids are single-use", s.id))
	}
	if err := rules.Validate(); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"session", sessionID}, {"song", songID}, {"listener", listenerID}, {"node", nodeID}} {
		if f.v == "" || len(f.v) > maxIDLen {
			return invalid("%s id must be 1..%d bytes, got %d", f.name, maxIDLen, len(f.v))
		}
	}
	if s.id != "" && s.id != sessionID {
		return invalid("session id %q does not match the stream's session %q", sessionID, s.id)
	}
	if durationMs == 0 {
		return invalid("song duration must be > 0 ms")
	}
	return s.record(&eventsv1.SessionStarted{SessionId: sessionID, SongId: songID, ListenerId: listenerID, NodeId: nodeID,
		DurationMs: durationMs, ExpiresAt: timestamppb.New(now.Add(rules.SessionTTL)), StartedAt: timestamppb.New(now)})
}

// Heartbeats credits the heartbeats of this session from one batch, in
// order, all taken to arrive at now, and returns one result per heartbeat.
// When any is accepted it records one HeartbeatsCredited (the non-empty
// credited ranges, the last accepted seq, the coverage after the batch and
// now); when none is, it records nothing.
//
// For each heartbeat, in order: refused "expired" if the session expired or
// now is after [Session.ExpiresAt]; "duplicate_or_old" if seq ≤ the last
// accepted seq; "bad_range" if from ≥ to or from ≥ duration; "too_soon" if
// a heartbeat was accepted before (in this batch or earlier) less than
// rules.MinInterval before now. Otherwise it is accepted and credits
//
//	[from, min(to, from + min(wall + rules.Slack, rules.MaxCredit), duration))
//
// where wall is now − the previous accepted heartbeat (for the first: now −
// the session start, i.e. SessionStarted.expires_at − rules.SessionTTL),
// floored to whole milliseconds and never negative. Every heartbeat after an
// accepted one in the same batch is therefore too_soon when MinInterval > 0
// (see the package doc on batches).
//
// Errors: [ErrNotStarted] (not_found), [ErrInvalidRules]. Heartbeats after
// the session counted are still credited (they keep it alive); the session
// counts once.
func (s *Session) Heartbeats(batch []Heartbeat, now time.Time, rules Rules) ([]Result, error) {
	s.reached = false
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	if !s.started {
		return nil, kinded(apperr.NotFound, ErrNotStarted, fmt.Sprintf("session %s was not started", s.id))
	}
	cov := s.cov.Clone()
	var (
		results  = make([]Result, len(batch))
		ranges   []*eventsv1.HeartbeatsCredited_Range
		accepted bool
		beats    = s.beats
		lastSeq  = s.lastSeq
		prev     = s.lastAt
		expiry   = s.ExpiresAt(rules)
	)
	if !beats {
		prev = s.startedAt
		if prev.IsZero() {
			prev = s.startExpiry.Add(-rules.SessionTTL)
		}
	}
	for i, hb := range batch {
		r := Result{Seq: hb.Seq, Status: Refused}
		wall := max(now.Sub(prev), 0)
		switch {
		case s.expired || now.After(expiry):
			r.Reason = ReasonExpired
		case hb.Seq <= lastSeq:
			r.Reason = ReasonDuplicateOrOld
		case hb.FromMs >= hb.ToMs || hb.FromMs >= s.durationMs:
			r.Reason = ReasonBadRange
		case beats && wall < rules.MinInterval:
			r.Reason = ReasonTooSoon
		default:
			limit := uint64(min(wall+rules.Slack, rules.MaxCredit) / time.Millisecond)
			end, carry := bits.Add64(hb.FromMs, limit, 0)
			if carry != 0 {
				end = ^uint64(0)
			}
			to := min(hb.ToMs, end, s.durationMs)
			r.Status, r.CreditedMs = Accepted, to-hb.FromMs
			if to > hb.FromMs {
				r.NewMs = cov.Add(hb.FromMs, to)
				ranges = append(ranges, &eventsv1.HeartbeatsCredited_Range{FromMs: hb.FromMs, ToMs: to})
			}
			accepted, beats, lastSeq, prev = true, true, hb.Seq, now
			expiry = now.Add(rules.SessionTTL)
		}
		results[i] = r
	}
	if !accepted {
		return results, nil
	}
	if err := s.record(&eventsv1.HeartbeatsCredited{SessionId: s.id, LastSeq: lastSeq, Ranges: ranges,
		CoverageMs: cov.Total(), At: timestamppb.New(now)}); err != nil {
		return nil, err
	}
	// A session may already be past the threshold when its batch arrives:
	// rules lowered by a new policy count it at its next accepted heartbeat.
	s.reached = !s.counted && s.cov.Reaches(rules.CountCoveragePPM)
	return results, nil
}

// Count records PlayCounted: the session counts as play playID, the song's
// songPlayNumber-th play and the listener's listenerPlayNumber-th play of
// the song (both 1-based), numbers the caller assigns. Errors:
// [ErrNotStarted] (not_found); [ErrAlreadyCounted] (conflict) on a second
// call; [ErrSessionExpired] (conflict); [ErrNotCountable] (forbidden) when
// coverage is below the threshold of rules; [ErrInvalidInput] for an empty
// or long play id or a zero number; [ErrInvalidRules].
func (s *Session) Count(playID string, songPlayNumber, listenerPlayNumber uint64, rules Rules) error {
	if err := rules.Validate(); err != nil {
		return err
	}
	switch {
	case !s.started:
		return kinded(apperr.NotFound, ErrNotStarted, fmt.Sprintf("session %s was not started", s.id))
	case s.counted:
		return kinded(apperr.Conflict, ErrAlreadyCounted, fmt.Sprintf("session %s already counted as play %s", s.id, s.playID))
	case s.expired:
		return kinded(apperr.Conflict, ErrSessionExpired, fmt.Sprintf("session %s expired", s.id))
	case !s.cov.Reaches(rules.CountCoveragePPM):
		return kinded(apperr.Forbidden, ErrNotCountable, fmt.Sprintf("session %s covers %d of %d ms, below %d ppm",
			s.id, s.cov.Total(), s.durationMs, rules.CountCoveragePPM))
	case playID == "" || len(playID) > maxIDLen:
		return invalid("play id must be 1..%d bytes, got %d", maxIDLen, len(playID))
	case songPlayNumber == 0 || listenerPlayNumber == 0:
		return invalid("play numbers are 1-based, got song %d, listener %d", songPlayNumber, listenerPlayNumber)
	}
	return s.record(&eventsv1.PlayCounted{PlayId: playID, SessionId: s.id, SongId: s.songID, ListenerId: s.listenerID,
		NodeId: s.nodeID, SongPlayNumber: songPlayNumber, ListenerPlayNumber: listenerPlayNumber, CoverageMs: s.cov.Total()})
}

// Expire records SessionExpired when now is after [Session.ExpiresAt] and
// the session has not expired yet; otherwise it does nothing and returns
// nil. Errors: [ErrNotStarted] (not_found), [ErrInvalidRules].
func (s *Session) Expire(now time.Time, rules Rules) error {
	if err := rules.Validate(); err != nil {
		return err
	}
	if !s.started {
		return kinded(apperr.NotFound, ErrNotStarted, fmt.Sprintf("session %s was not started", s.id))
	}
	if s.expired || !now.After(s.ExpiresAt(rules)) {
		return nil
	}
	return s.record(&eventsv1.SessionExpired{SessionId: s.id, ListenerId: s.listenerID, Counted: s.counted})
}

// Events returns the events that rebuild the session as it is now, for
// snapshots: its start, all its coverage as one credit (nil before any
// accepted heartbeat) and its count (nil before it counted; only the
// session and play ids are set). Apply them in that order to a new session.
func (s *Session) Events() (*eventsv1.SessionStarted, *eventsv1.HeartbeatsCredited, *eventsv1.PlayCounted) {
	started := &eventsv1.SessionStarted{SessionId: s.id, SongId: s.songID, ListenerId: s.listenerID, NodeId: s.nodeID,
		DurationMs: s.durationMs, ExpiresAt: timestamppb.New(s.startExpiry)}
	if !s.startedAt.IsZero() {
		started.StartedAt = timestamppb.New(s.startedAt)
	}
	var credited *eventsv1.HeartbeatsCredited
	if s.beats {
		credited = &eventsv1.HeartbeatsCredited{SessionId: s.id, LastSeq: s.lastSeq, CoverageMs: s.cov.Total(), At: timestamppb.New(s.lastAt)}
		for _, sp := range s.cov.spans {
			credited.Ranges = append(credited.Ranges, &eventsv1.HeartbeatsCredited_Range{FromMs: sp.FromMs, ToMs: sp.ToMs})
		}
	}
	var counted *eventsv1.PlayCounted
	if s.counted {
		counted = &eventsv1.PlayCounted{SessionId: s.id, PlayId: s.playID}
	}
	return started, credited, counted
}

func (s *Session) record(e proto.Message) error { return events.RecordNew(s, e) }

// Apply evolves the session by one of its events: SessionStarted,
// HeartbeatsCredited, PlayCounted, SessionExpired. It returns an error for
// another event type, an event of another session, or an event that does
// not fit the state (a second start, heartbeats before the start, a
// coverage_ms that the ranges do not give).
func (s *Session) Apply(e proto.Message) error {
	if e, ok := e.(*eventsv1.SessionStarted); ok {
		if s.started {
			return fmt.Errorf("session %s: started twice", s.id)
		}
		if s.id != "" && e.SessionId != s.id {
			return fmt.Errorf("session %s: SessionStarted of session %s", s.id, e.SessionId)
		}
		s.id, s.songID, s.listenerID, s.nodeID, s.durationMs = e.SessionId, e.SongId, e.ListenerId, e.NodeId, e.DurationMs
		s.startExpiry = e.ExpiresAt.AsTime()
		if e.StartedAt != nil {
			s.startedAt = e.StartedAt.AsTime()
		}
		s.cov = Coverage{durationMs: e.DurationMs}
		s.started = true
		return nil
	}
	if !s.started {
		return fmt.Errorf("session %s: %T before SessionStarted", s.id, e)
	}
	switch e := e.(type) {
	case *eventsv1.HeartbeatsCredited:
		if e.SessionId != s.id {
			return fmt.Errorf("session %s: HeartbeatsCredited of session %s", s.id, e.SessionId)
		}
		if e.At == nil {
			return fmt.Errorf("session %s: HeartbeatsCredited without at", s.id)
		}
		cov := s.cov.Clone()
		for _, r := range e.Ranges {
			cov.Add(r.FromMs, r.ToMs)
		}
		if cov.Total() != e.CoverageMs {
			return fmt.Errorf("session %s: HeartbeatsCredited says coverage %d ms, its ranges give %d ms", s.id, e.CoverageMs, cov.Total())
		}
		s.cov = *cov
		s.beats, s.lastAt, s.lastSeq = true, e.At.AsTime(), e.LastSeq
	case *eventsv1.PlayCounted:
		if e.SessionId != s.id {
			return fmt.Errorf("session %s: PlayCounted of session %s", s.id, e.SessionId)
		}
		s.counted, s.playID = true, e.PlayId
	case *eventsv1.SessionExpired:
		if e.SessionId != s.id {
			return fmt.Errorf("session %s: SessionExpired of session %s", s.id, e.SessionId)
		}
		s.expired = true
	default:
		return fmt.Errorf("session %s: unexpected event %T", s.id, e)
	}
	return nil
}

// kinded wraps a sentinel with detail and the kind the ports map to a
// Connect code (internal/platform/apperr).
func kinded(kind string, sentinel error, detail string) error {
	return apperr.Wrap(kind, fmt.Errorf("%w: %s", sentinel, detail))
}

func invalid(format string, args ...any) error {
	return kinded(apperr.InvalidInput, ErrInvalidInput, fmt.Sprintf(format, args...))
}

// Sentinels; errors returned by this package wrap exactly one of them. The
// comment gives the kind.
var (
	// ErrInvalidRules: rules out of range. invalid_input.
	ErrInvalidRules = errors.New("plays: invalid play rules")
	// ErrInvalidInput: a malformed command argument. invalid_input.
	ErrInvalidInput = errors.New("plays: invalid input")
	// ErrNotStarted: the session was never started. not_found.
	ErrNotStarted = errors.New("plays: session not started")
	// ErrAlreadyStarted: the session id was used before. conflict.
	ErrAlreadyStarted = errors.New("plays: session already started")
	// ErrAlreadyCounted: the session counted before. conflict.
	ErrAlreadyCounted = errors.New("plays: session already counted")
	// ErrSessionExpired: the session expired. conflict.
	ErrSessionExpired = errors.New("plays: session expired")
	// ErrNotCountable: coverage is below the count threshold. forbidden.
	ErrNotCountable = errors.New("plays: coverage below the count threshold")
)
