package scenario

import (
	"context"
	"fmt"
	"time"

	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
)

// heartbeatGap is how long the player waits after the session started or
// its previous heartbeat was accepted: the plays service refuses
// heartbeats less than 1 s apart, and credits each with the wall time
// since the previous one plus 500 ms — 1.6 s of a 3 s song, enough to
// count at 50%.
const heartbeatGap = 1100 * time.Millisecond

// play plays one session of song j until it counts and returns the song's
// play number the plays service gave it, or 0 when the answer that
// carried it was lost (a restart) and the session was found counted.
//
// The player measures the spacing from the answers it received, so a
// heartbeat is never sent less than heartbeatGap after the previous
// accepted one, even when a call is retried: a retry of a heartbeat the
// service accepted is refused as duplicate_or_old (and the session is then
// read back), one it did not see is judged afresh, still more than a
// second after the last accepted one. A session that expired or that the
// service no longer knows is replaced by a new one.
func (d *driver) play(ctx context.Context, j int, pl playPlan) (uint64, error) {
	l, node := d.who(pl.Listener), d.who(pl.Node)
	song := d.plan.Songs[j].Name
	what := fmt.Sprintf("%s playing %s", l.Name, song)
	deadline := time.Now().Add(waitDeadline)
	for session := 1; ; session++ {
		if session > 1 {
			d.note("%s: session %d (the previous one expired or was lost)", what, session)
		}
		start, err := call(ctx, d, what+": start session", l.plays.StartSession,
			&playsv1.StartSessionRequest{SongId: d.songIDs[j], NodeId: node.ID}, lagging())
		if err != nil {
			return 0, err
		}
		sid := start.SessionId
		last := time.Now() // the service started the session before it answered
		seq, from := uint64(1), uint64(0)
	beats:
		for {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%s: not counted within %s", what, waitDeadline)
			}
			if err := sleep(ctx, time.Until(last.Add(heartbeatGap))); err != nil {
				return 0, err
			}
			res, err := call(ctx, d, what+": heartbeat", l.plays.RecordHeartbeats, &playsv1.RecordHeartbeatsRequest{
				Heartbeats: []*playsv1.Heartbeat{{SessionId: sid, Seq: seq, FromMs: from, ToMs: songDurationMs}}})
			if err != nil {
				return 0, err
			}
			if len(res.Results) != 1 {
				return 0, fmt.Errorf("%s: %d results for one heartbeat", what, len(res.Results))
			}
			r := res.Results[0]
			if r.Accepted {
				last = time.Now()
				if r.PlayNumber > 0 {
					return r.PlayNumber, nil
				}
				if r.CoverageMs >= songDurationMs {
					return 0, fmt.Errorf("%s: session %s covers the whole song and did not count", what, sid)
				}
				seq, from = seq+1, r.CoverageMs
				continue
			}
			switch r.Reason {
			case "too_soon":
				last = time.Now()
			case "duplicate_or_old":
				// A heartbeat whose answer was lost got there: read the
				// session back.
				s, err := call(ctx, d, what+": read session", l.plays.GetSession, &playsv1.GetSessionRequest{SessionId: sid}, lagging())
				if err != nil {
					return 0, err
				}
				if s.Counted {
					return 0, nil
				}
				last = time.Now()
				seq, from = s.LastSeq+1, s.CoverageMs
			case "expired", "unknown_session":
				break beats
			default:
				return 0, fmt.Errorf("%s: heartbeat %d of session %s refused: %s", what, seq, sid, r.Reason)
			}
		}
	}
}

// playSong plays song j's plays one after the other (the song's play
// numbers, and so the tiers, follow the plan's order) and records what the
// plays service numbered them.
func (d *driver) playSong(ctx context.Context, j int) error {
	for k, pl := range d.plan.Songs[j].Plays {
		n, err := d.play(ctx, j, pl)
		if err != nil {
			return err
		}
		d.plays.Add(1)
		switch want := uint64(k + 1); {
		case n == 0:
			d.note("%s's play %d counted; its number was in an answer a restart lost", d.plan.Songs[j].Name, want)
		case n != want:
			d.problem("%s: the play by %s is the song's play %d, the plan's %d (the tier and the model follow the plan)",
				d.plan.Songs[j].Name, pl.Listener, n, want)
		}
	}
	return nil
}
