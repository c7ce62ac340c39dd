// Package adapters holds the plays service's shard writers. Sessions are
// spread over a fixed number of shards by song, and each shard is one
// stream (plays-<n>) with one writer: heartbeats of many sessions go out as
// one HeartbeatBatchRecorded per append, and a song's plays are numbered by
// the single writer of its shard, so numbers stay exact and gap-free
// however many API instances feed the shard.
package adapters

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
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

// Shard is a shard's state: its open sessions and its songs' play counts.
type Shard struct {
	Sessions      map[string]*domain.Session
	SongPlays     map[string]uint64 // song → plays counted
	ListenerPlays map[string]uint64 // listener/song → plays counted
}

func newShard() *Shard {
	return &Shard{Sessions: map[string]*domain.Session{}, SongPlays: map[string]uint64{}, ListenerPlays: map[string]uint64{}}
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

// OpenShard recovers shard n from its stream.
func OpenShard(ctx context.Context, store *eventstore.Store, n int) (*ShardWriter, error) {
	w, err := eventstore.OpenWriter(ctx, store, ShardStream(n), newShard(), applyShard, eventstore.WriterOptions{})
	if err != nil {
		return nil, err
	}
	return &ShardWriter{Writer: w, N: n}, nil
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
func (w *ShardWriter) Heartbeats(ctx context.Context, beats []Beat, now time.Time, rules domain.Rules, authorize func(*domain.Session) bool) (map[int]BeatResult, error) {
	out := map[int]BeatResult{}
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		clear(out)
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
func (w *ShardWriter) Start(ctx context.Context, id, songID, listenerID, nodeID string, durationMs uint64, now time.Time, rules domain.Rules, gate func(nextPlay uint64) error) (time.Time, error) {
	var expires time.Time
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
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
func (w *ShardWriter) Expire(ctx context.Context, now time.Time, rules domain.Rules) ([]string, error) {
	var listeners []string
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
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

// Session returns a copy of what a session shows, read inside the writer.
func (w *ShardWriter) Session(ctx context.Context, id string, fn func(*domain.Session)) (bool, error) {
	found := false
	err := w.Do(ctx, func(s *Shard) ([]proto.Message, error) {
		if sess, ok := s.Sessions[id]; ok {
			found = true
			fn(sess)
		}
		return nil, nil
	})
	return found, err
}
