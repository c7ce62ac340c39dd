package eventstored

import (
	"math"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
)

// chunk bounds how many events one storage scan hands a subscription before
// it looks at its context again.
const chunk = 1024

// subscribe serves a catch-up subscription. It always reads from storage and
// sleeps on the store's commit signal when there is nothing new, so there is
// no separate live buffer that could overflow, reorder or drop events.
func (s *streamsServer) subscribe(o *api.ReadReq_Options, f *filter, structured bool, srv api.Streams_ReadServer) error {
	ctx := srv.Context()
	all := o.GetAll() != nil
	if !all && f != nil {
		return invalid("filters apply to $all subscriptions only")
	}
	var next uint64 // $all: next position; stream: next revision
	var stream string
	if all {
		pos, err := allStart(o.GetAll(), false)
		if err != nil {
			return err
		}
		head, _ := s.store.Head()
		switch {
		case pos == math.MaxUint64: // End: only what comes after now
			next = head + 1
		case o.GetAll().GetPosition() != nil: // a position is exclusive
			next = pos + 1
		default:
			next = pos
		}
	} else {
		so := o.GetStream()
		var err error
		if stream, err = streamName(so.GetStreamIdentifier()); err != nil {
			return err
		}
		st, err := s.store.State(stream)
		if err != nil {
			return toStatus(ctx, err)
		}
		if st.Tombstoned {
			return toStatus(ctx, &StreamDeletedError{Stream: stream})
		}
		switch v := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Start:
			next = 0
		case *api.ReadReq_Options_StreamOptions_End:
			next = uint64(st.Last + 1)
		case *api.ReadReq_Options_StreamOptions_Revision:
			next = v.Revision + 1
		default:
			return invalid("stream subscription needs start, end or a revision")
		}
	}

	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}

	// Filtered $all subscriptions report how far they have scanned, so a
	// consumer whose filter matches rarely can still checkpoint.
	interval := uint64(0)
	if f != nil {
		window := uint64(o.GetFilter().GetMax())
		if window == 0 {
			window = 32
		}
		mult := uint64(o.GetFilter().GetCheckpointIntervalMultiplier())
		if mult == 0 {
			mult = 1
		}
		interval = window * mult
	}
	var scanned, lastScanned uint64
	checkpoint := func(pos uint64) error {
		scanned = 0
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
			CommitPosition: pos, PreparePosition: pos}}})
	}

	caughtUp := false
	for {
		_, wake := s.store.Head()
		var tb int64
		if !all {
			st, err := s.store.State(stream)
			if err != nil {
				return toStatus(ctx, err)
			}
			tb = st.TB
		}
		n := 0
		send := func(r *Record) (bool, error) {
			n++
			if all {
				next = r.Position + 1
				lastScanned = r.Position
				if f.match(r) {
					if err := srv.SendMsg(frame(appendReadEvent(nil, r, structured, true))); err != nil {
						return false, err
					}
				}
				if interval > 0 {
					scanned++
					if scanned >= interval {
						if err := checkpoint(r.Position); err != nil {
							return false, err
						}
					}
				}
			} else {
				if r.Revision == TombstoneRevision {
					return false, &StreamDeletedError{Stream: stream}
				}
				next = r.Revision + 1
				if int64(r.Revision) < tb {
					return n < chunk, nil // hidden by a soft delete
				}
				if err := srv.SendMsg(frame(appendReadEvent(nil, r, structured, false))); err != nil {
					return false, err
				}
			}
			return n < chunk && ctx.Err() == nil, nil
		}
		var err error
		if all {
			err = s.store.ReadAll(next, false, send)
		} else {
			err = s.store.ReadStream(stream, next, false, send)
		}
		if err != nil {
			return toStatus(ctx, err)
		}
		if n > 0 {
			continue
		}
		if interval > 0 && scanned > 0 {
			if err := checkpoint(lastScanned); err != nil {
				return err
			}
		}
		if !caughtUp {
			caughtUp = true
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			s.store.mu.Lock()
			closed := s.store.closed
			s.store.mu.Unlock()
			if closed {
				return toStatus(ctx, errStoreClosed)
			}
		}
	}
}
