// Package adapters holds the plays service's shard writers. Sessions are
// spread over a fixed number of shards by song, and each shard is one
// stream (plays-<n>): heartbeats of many sessions go out as one
// HeartbeatBatchRecorded per append, and a song's plays are numbered in its
// shard's stream. Every instance of the service writes every shard through
// an eventstore.Writer, which appends only at the revision it decided on
// (after reading what other instances appended), so numbers stay exact and
// gap-free however many instances run.
package adapters

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	snapshotsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/snapshots/v1"
	"github.com/fanfare/fanfare/services/plays/domain"
	"google.golang.org/protobuf/proto"
)

// ShardOf is the shard of a song. The shard count is fixed for the life of
// the data: changing it would move songs between streams.
func ShardOf(songID string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(songID))
	return int(h.Sum32() % uint32(shards))
}

// ShardStream is the stream of shard n.
func ShardStream(n int) string { return fmt.Sprintf("plays-%d", n) }

// Shard is a shard's state: its open sessions, its songs' play counts and
// the play rules in force.
type Shard struct {
	Sessions      map[string]*domain.Session
	SongPlays     map[string]uint64 // song → plays counted
	ListenerPlays map[string]uint64 // listener/song → plays counted
	Rules         domain.Rules
	PolicyVersion uint64 // of Rules (0: the service's configured rules)
}

func newShard(rules domain.Rules) func() *Shard {
	return func() *Shard {
		return &Shard{Sessions: map[string]*domain.Session{}, SongPlays: map[string]uint64{}, ListenerPlays: map[string]uint64{}, Rules: rules}
	}
}

// snapshot is the shard as one message, for the writer's snapshots.
func snapshot(s *Shard) (proto.Message, error) {
	out := &snapshotsv1.PlaysShard{SongPlays: maps.Clone(s.SongPlays), ListenerPlays: maps.Clone(s.ListenerPlays)}
	if s.PolicyVersion > 0 {
		out.Rules = &eventsv1.PlayRulesApplied{PolicyVersion: s.PolicyVersion, Rules: s.Rules.Proto()}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Sessions)) {
		started, credited, counted := s.Sessions[id].Events()
		out.Sessions = append(out.Sessions, &snapshotsv1.PlaysSession{Started: started, Credited: credited, Counted: counted})
	}
	return out, nil
}

func restore(s *Shard, m proto.Message) error {
	snap, ok := m.(*snapshotsv1.PlaysShard)
	if !ok {
		return fmt.Errorf("plays shard: a snapshot of %T", m)
	}
	if snap.Rules != nil {
		if err := s.apply(snap.Rules); err != nil {
			return err
		}
	}
	for _, ps := range snap.Sessions {
		sess := domain.NewSession(ps.Started.GetSessionId())
		evs := []proto.Message{ps.Started}
		if ps.Credited != nil {
			evs = append(evs, ps.Credited)
		}
		if ps.Counted != nil {
			evs = append(evs, ps.Counted)
		}
		for _, e := range evs {
			if err := sess.Apply(e); err != nil {
				return err
			}
		}
		s.Sessions[sess.ID()] = sess
	}
	maps.Copy(s.SongPlays, snap.SongPlays)
	maps.Copy(s.ListenerPlays, snap.ListenerPlays)
	return nil
}

func applyShard(s *Shard, e eventstore.Event) error { return s.apply(e.Message) }

func (s *Shard) apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.SessionStarted:
		sess := domain.NewSession(e.SessionId)
		if err := sess.Apply(e); err != nil {
			return err
		}
		s.Sessions[e.SessionId] = sess
	case *eventsv1.HeartbeatBatchRecorded:
		for _, hc := range e.Sessions {
			sess, ok := s.Sessions[hc.SessionId]
			if !ok {
				return fmt.Errorf("heartbeats of unknown session %s", hc.SessionId)
			}
			if err := sess.Apply(hc); err != nil {
				return err
			}
		}
	case *eventsv1.PlayCounted:
		sess, ok := s.Sessions[e.SessionId]
		if !ok {
			return fmt.Errorf("play of unknown session %s", e.SessionId)
		}
		if err := sess.Apply(e); err != nil {
			return err
		}
		s.SongPlays[e.SongId] = e.SongPlayNumber
		s.ListenerPlays[e.ListenerId+"/"+e.SongId] = e.ListenerPlayNumber
	case *eventsv1.SessionExpired:
		delete(s.Sessions, e.SessionId)
	case *eventsv1.PlayRulesApplied:
		r, err := domain.RulesFromProto(e.Rules)
		if err != nil {
			return fmt.Errorf("play rules of policy v%d: %w", e.PolicyVersion, err)
		}
		s.Rules, s.PolicyVersion = r, e.PolicyVersion
	default:
		return fmt.Errorf("plays shard: unexpected event %T", m)
	}
	return nil
}

// ShardWriter is the single writer of one shard.
type ShardWriter struct {
	*eventstore.Writer[*Shard]
	N int
}

// OpenShard recovers shard n from its latest snapshot and stream; rules
// apply until a policy's play rules are recorded in it. A snapshot is taken
// every snapshotEvery events.
func OpenShard(ctx context.Context, store *eventstore.Store, n int, rules domain.Rules, snapshotEvery uint64) (*ShardWriter, error) {
	w, err := eventstore.OpenWriter(ctx, store, ShardStream(n), newShard(rules), applyShard,
		eventstore.WriterOptions[*Shard]{SnapshotEvery: snapshotEvery, Snapshot: snapshot, Restore: restore})
	if err != nil {
		return nil, err
	}
	return &ShardWriter{Writer: w, N: n}, nil
}

// ApplyRules records a policy's play rules in the shard, unless it holds
// those of that version or a later one already.
func (w *ShardWriter) ApplyRules(ctx context.Context, version uint64, rules domain.Rules) error {
	return w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		if version <= s.PolicyVersion {
			return nil, nil
		}
		e := &eventsv1.PlayRulesApplied{PolicyVersion: version, Rules: rules.Proto()}
		return []proto.Message{e}, s.apply(e)
	})
}

// Beat is one heartbeat routed to a shard, with its index in the request.
type Beat struct {
	Index     int
	SessionID string
	domain.Heartbeat
}

// BeatResult is a heartbeat's outcome.
type BeatResult struct {
	domain.Result
	CoverageMs uint64
	PlayNumber uint64 // set on the heartbeat that made its session count
}

// Heartbeats records heartbeats of this shard's sessions at now, and counts
// the sessions they take to the threshold, numbering each song's plays.
// authorize refuses sessions the caller may not feed. Results are by
// Beat.Index.
func (w *ShardWriter) Heartbeats(ctx context.Context, beats []Beat, now time.Time, authorize func(*domain.Session) bool) (map[int]BeatResult, error) {
	out := map[int]BeatResult{}
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		clear(out)
		rules := s.Rules
		bySession := map[string][]Beat{}
		var order []string
		for _, b := range beats {
			if _, ok := bySession[b.SessionID]; !ok {
				order = append(order, b.SessionID)
			}
			bySession[b.SessionID] = append(bySession[b.SessionID], b)
		}
		batch := &eventsv1.HeartbeatBatchRecorded{}
		var counted []proto.Message
		for _, id := range order {
			group := bySession[id]
			sess, ok := s.Sessions[id]
			reason := ""
			switch {
			case !ok:
				reason = "unknown_session"
			case !authorize(sess):
				reason = "forbidden"
			}
			if reason != "" {
				for _, b := range group {
					out[b.Index] = BeatResult{Result: domain.Result{Seq: b.Seq, Status: domain.Refused, Reason: reason}}
				}
				continue
			}
			hbs := make([]domain.Heartbeat, len(group))
			for i, b := range group {
				hbs[i] = b.Heartbeat
			}
			results, err := sess.Heartbeats(hbs, now, rules)
			if err != nil {
				return nil, err
			}
			for _, e := range sess.Flush() {
				batch.Sessions = append(batch.Sessions, e.(*eventsv1.HeartbeatsCredited))
			}
			var number uint64
			if sess.ReachedCount() {
				number = s.SongPlays[sess.SongID()] + 1
				lkey := sess.ListenerID() + "/" + sess.SongID()
				if err := sess.Count("play-"+id, number, s.ListenerPlays[lkey]+1, rules); err != nil {
					return nil, err
				}
				s.SongPlays[sess.SongID()] = number
				s.ListenerPlays[lkey]++
				counted = append(counted, sess.Flush()...)
			}
			for i, b := range group {
				r := BeatResult{Result: results[i], CoverageMs: sess.CoverageMs()}
				if number > 0 && results[i].Status == domain.Accepted {
					r.PlayNumber, number = number, 0
				}
				out[b.Index] = r
			}
		}
		if len(batch.Sessions) == 0 {
			return counted, nil
		}
		return append([]proto.Message{batch}, counted...), nil
	})
	return out, err
}

// Start opens a session in this shard. gate sees the play number the
// song's next counted play would get and may refuse the session.
func (w *ShardWriter) Start(ctx context.Context, id, songID, listenerID, nodeID string, durationMs uint64, now time.Time, gate func(nextPlay uint64) error) (time.Time, error) {
	var expires time.Time
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		rules := s.Rules
		if _, ok := s.Sessions[id]; ok {
			return nil, fmt.Errorf("session id %s is taken", id)
		}
		if err := gate(s.SongPlays[songID] + 1); err != nil {
			return nil, err
		}
		sess := domain.NewSession(id)
		if err := sess.Start(id, songID, listenerID, nodeID, durationMs, now, rules); err != nil {
			return nil, err
		}
		s.Sessions[id] = sess
		expires = sess.ExpiresAt(rules)
		return sess.Flush(), nil
	})
	return expires, err
}

// Expire ends the sessions that expired by now and returns their listeners.
func (w *ShardWriter) Expire(ctx context.Context, now time.Time) ([]string, error) {
	var listeners []string
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		rules := s.Rules
		listeners = listeners[:0]
		var evs []proto.Message
		for id, sess := range s.Sessions {
			if !now.After(sess.ExpiresAt(rules)) {
				continue
			}
			if err := sess.Expire(now, rules); err != nil {
				return nil, err
			}
			evs = append(evs, sess.Flush()...)
			listeners = append(listeners, sess.ListenerID())
			delete(s.Sessions, id)
		}
		return evs, nil
	})
	return listeners, err
}

// Session shows a session to fn, with the rules in force, inside the
// writer.
func (w *ShardWriter) Session(ctx context.Context, id string, fn func(*domain.Session, domain.Rules)) (bool, error) {
	found := false
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		found = false
		if sess, ok := s.Sessions[id]; ok {
			found = true
			fn(sess, s.Rules)
		}
		return nil, nil
	})
	return found, err
}
