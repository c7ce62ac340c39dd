package eventstored

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"
)

// ExpectKind is the form of an expected revision.
type ExpectKind int

const (
	ExpectAny ExpectKind = iota
	ExpectNoStream
	ExpectStreamExists
	ExpectExact
)

// Expected is an expected stream revision.
type Expected struct {
	Kind ExpectKind
	Rev  uint64 // with ExpectExact
}

func (e Expected) String() string {
	switch e.Kind {
	case ExpectNoStream:
		return "no_stream"
	case ExpectStreamExists:
		return "stream_exists"
	case ExpectExact:
		return fmt.Sprint(e.Rev)
	default:
		return "any"
	}
}

func (e Expected) met(st streamState) bool {
	switch e.Kind {
	case ExpectNoStream:
		return st.Last == -1 || st.SoftDeleted
	case ExpectStreamExists:
		return st.Last >= 0 && !st.SoftDeleted
	case ExpectExact:
		return st.Last >= 0 && uint64(st.Last) == e.Rev
	default:
		return true
	}
}

// Proposed is an event offered for append.
type Proposed struct {
	ID             uuid.UUID
	Type           string
	ContentType    string
	CustomMetadata []byte
	Data           []byte
}

// WriteResult is the outcome of an append, delete or tombstone.
type WriteResult struct {
	// Revision is the stream's current revision afterwards; -1 means the
	// stream has no events.
	Revision int64
	// Position is the $all position of the last event written (or matched
	// by an idempotent retry); 0 when nothing was written.
	Position uint64
}

// WrongExpectedVersionError is the optimistic-concurrency failure.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Expected
	Current  int64 // -1: no stream
}

func (e *WrongExpectedVersionError) Error() string {
	cur := "no_stream"
	if e.Current >= 0 {
		cur = fmt.Sprint(e.Current)
	}
	return fmt.Sprintf("wrong expected version for stream %q: expected %s, current %s", e.Stream, e.Expected, cur)
}

// StreamDeletedError is returned for any write to, or read of, a tombstoned stream.
type StreamDeletedError struct{ Stream string }

func (e *StreamDeletedError) Error() string { return fmt.Sprintf("stream %q is deleted", e.Stream) }

type opKind int

const (
	opAppend opKind = iota
	opDelete
	opTombstone
)

type writeOp struct {
	kind     opKind
	stream   string
	expected Expected
	events   []Proposed
	res      chan opResult
}

type opResult struct {
	WriteResult
	err error
}

// Append writes events to a stream if the expected revision holds. A retry
// of an append that already succeeded (same event ids at the same place)
// succeeds again without writing anything.
//
// Errors: *WrongExpectedVersionError, *StreamDeletedError, or a storage error.
func (s *Store) Append(stream string, expected Expected, events []Proposed) (WriteResult, error) {
	return s.submit(&writeOp{kind: opAppend, stream: stream, expected: expected, events: events})
}

// Delete soft-deletes a stream: reads report it as not found, and a later
// append recreates it with revisions continuing where they left off.
//
// Errors: *WrongExpectedVersionError, *StreamDeletedError, or a storage error.
func (s *Store) Delete(stream string, expected Expected) (WriteResult, error) {
	return s.submit(&writeOp{kind: opDelete, stream: stream, expected: expected})
}

// Tombstone deletes a stream for good: it can never be read or written again.
//
// Errors: *WrongExpectedVersionError, *StreamDeletedError, or a storage error.
func (s *Store) Tombstone(stream string, expected Expected) (WriteResult, error) {
	return s.submit(&writeOp{kind: opTombstone, stream: stream, expected: expected})
}

func (s *Store) submit(op *writeOp) (WriteResult, error) {
	op.res = make(chan opResult, 1)
	select {
	case s.writes <- op:
	case <-s.done:
		return WriteResult{}, errStoreClosed
	}
	select {
	case r := <-op.res:
		return r.WriteResult, r.err
	case <-s.done:
		// The writer answers every op it took before it stops.
		r := <-op.res
		return r.WriteResult, r.err
	}
}

// writer is the single writer: it folds whatever requests are waiting into
// one Pebble batch and one fsync (group commit), so throughput grows with
// concurrency while every acknowledgement still follows a durable commit.
func (s *Store) writer(now func() time.Time) {
	defer s.wg.Done()
	for {
		var ops []*writeOp
		select {
		case op := <-s.writes:
			ops = append(ops, op)
		case <-s.done:
			s.failQueued()
			return
		}
	drain:
		for len(ops) < s.maxBatch {
			select {
			case op := <-s.writes:
				ops = append(ops, op)
			default:
				break drain
			}
		}
		s.commit(ops, now())
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case op := <-s.writes:
			op.res <- opResult{err: errStoreClosed}
		default:
			return
		}
	}
}

type pendingEvent struct {
	id  uuid.UUID
	pos uint64
}

// batchCtx is one group commit: states and events staged but not yet durable.
type batchCtx struct {
	s       *Store
	b       *pebble.Batch
	created int64
	states  map[string]streamState
	revs    map[string]map[uint64]pendingEvent
	ids     map[string]map[uuid.UUID]uint64
	nextPos uint64
}

func (s *Store) commit(ops []*writeOp, now time.Time) {
	bc := &batchCtx{
		s:       s,
		b:       s.db.NewBatch(),
		created: now.UnixNano() / 100,
		states:  map[string]streamState{},
		revs:    map[string]map[uint64]pendingEvent{},
		ids:     map[string]map[uuid.UUID]uint64{},
		nextPos: s.nextPos,
	}
	defer bc.b.Close()
	results := make([]opResult, len(ops))
	for i, op := range ops {
		results[i] = bc.apply(op)
	}
	if bc.nextPos != s.nextPos {
		if err := bc.b.Commit(pebble.Sync); err != nil {
			err = fmt.Errorf("eventstored: commit: %w", err)
			for i := range results {
				// Nothing of this batch is durable, so nobody may be told otherwise.
				results[i] = opResult{err: err}
			}
			for _, op := range ops {
				delete(s.states, op.stream)
			}
			s.reply(ops, results)
			return
		}
		s.nextPos = bc.nextPos
		if len(s.states) > 1<<20 {
			s.states = make(map[string]streamState) // bound the cache; states reload from Pebble
		}
		for k, v := range bc.states {
			s.states[k] = v
		}
		s.published(bc.nextPos - 1)
	}
	s.reply(ops, results)
}

func (s *Store) reply(ops []*writeOp, results []opResult) {
	for i, op := range ops {
		op.res <- results[i]
	}
}

func (bc *batchCtx) state(stream string) (streamState, error) {
	if st, ok := bc.states[stream]; ok {
		return st, nil
	}
	if st, ok := bc.s.states[stream]; ok {
		return st, nil
	}
	st, err := bc.s.State(stream)
	if err != nil {
		return st, err
	}
	bc.s.states[stream] = st
	return st, nil
}

func (bc *batchCtx) apply(op *writeOp) opResult {
	st, err := bc.state(op.stream)
	if err != nil {
		return opResult{err: err}
	}
	if st.Tombstoned {
		return opResult{err: &StreamDeletedError{Stream: op.stream}}
	}
	met := op.expected.met(st)
	switch op.kind {
	case opDelete, opTombstone:
		if !met {
			return opResult{err: &WrongExpectedVersionError{Stream: op.stream, Expected: op.expected, Current: st.Last}}
		}
		if op.kind == opTombstone {
			pos := bc.put(op.stream, TombstoneRevision, Proposed{ID: uuid.New(), Type: "$streamDeleted", ContentType: "application/octet-stream"})
			st.Tombstoned = true
			bc.setState(op.stream, st)
			return opResult{WriteResult: WriteResult{Revision: st.Last, Position: pos}}
		}
		st.TB = st.Last + 1
		st.SoftDeleted = true
		bc.setState(op.stream, st)
		// Like KurrentDB, a soft delete is a truncate-before in the stream's
		// metadata stream, so it shows in $all and in GetStreamMetadata.
		meta, _ := json.Marshal(map[string]int64{"$tb": st.TB})
		pos, err := bc.appendEvents("$$"+op.stream, []Proposed{{ID: uuid.New(), Type: "$metadata", ContentType: "application/json", Data: meta}})
		if err != nil {
			return opResult{err: err}
		}
		return opResult{WriteResult: WriteResult{Revision: st.Last, Position: pos}}
	}

	if op.expected.Kind == ExpectAny || !met {
		if res, done, err := bc.idempotent(op, st); err != nil || done {
			return opResult{WriteResult: res, err: err}
		}
	}
	if !met {
		return opResult{err: &WrongExpectedVersionError{Stream: op.stream, Expected: op.expected, Current: st.Last}}
	}
	if len(op.events) == 0 {
		return opResult{WriteResult: WriteResult{Revision: st.Last}}
	}
	pos, err := bc.appendEvents(op.stream, op.events)
	if err != nil {
		return opResult{err: err}
	}
	st, _ = bc.state(op.stream)
	return opResult{WriteResult: WriteResult{Revision: st.Last, Position: pos}}
}

func (bc *batchCtx) setState(stream string, st streamState) {
	bc.states[stream] = st
	bc.b.Set(metaKey(stream), st.encode(), nil)
}

func (bc *batchCtx) appendEvents(stream string, events []Proposed) (uint64, error) {
	st, err := bc.state(stream)
	if err != nil {
		return 0, err
	}
	var pos uint64
	for _, ev := range events {
		st.Last++
		pos = bc.put(stream, uint64(st.Last), ev)
	}
	st.SoftDeleted = false
	bc.setState(stream, st)
	return pos, nil
}

func (bc *batchCtx) put(stream string, rev uint64, ev Proposed) uint64 {
	pos := bc.nextPos
	bc.nextPos++
	rec := &Record{Stream: stream, Revision: rev, ID: ev.ID, Type: ev.Type, ContentType: ev.ContentType,
		Created: bc.created, CustomMetadata: ev.CustomMetadata, Data: ev.Data}
	bc.b.Set(logKey(pos), encodeRecord(rec), nil)
	bc.b.Set(streamKey(stream, rev), binary.BigEndian.AppendUint64(nil, pos), nil)
	bc.b.Set(idemKey(stream, ev.ID), binary.BigEndian.AppendUint64(nil, rev), nil)
	if bc.revs[stream] == nil {
		bc.revs[stream] = map[uint64]pendingEvent{}
		bc.ids[stream] = map[uuid.UUID]uint64{}
	}
	bc.revs[stream][rev] = pendingEvent{id: ev.ID, pos: pos}
	bc.ids[stream][ev.ID] = rev
	return pos
}

// idempotent decides whether op is a retry of events already in the stream.
// done=false means it is not, and the normal expected-revision rule applies.
func (bc *batchCtx) idempotent(op *writeOp, st streamState) (WriteResult, bool, error) {
	if len(op.events) == 0 {
		return WriteResult{}, false, nil
	}
	var start uint64
	switch op.expected.Kind {
	case ExpectAny:
		rev, ok, err := bc.revOf(op.stream, op.events[0].ID)
		if err != nil || !ok {
			return WriteResult{}, false, err
		}
		start = rev
	case ExpectExact:
		start = op.expected.Rev + 1
	case ExpectNoStream:
		start = uint64(st.TB)
	default:
		return WriteResult{}, false, nil
	}
	var pos uint64
	for i, ev := range op.events {
		id, p, ok, err := bc.eventAt(op.stream, start+uint64(i))
		if err != nil {
			return WriteResult{}, false, err
		}
		if !ok || id != ev.ID {
			if i == 0 && op.expected.Kind != ExpectAny {
				return WriteResult{}, false, nil
			}
			// Part of the request matches what is there and part does not:
			// neither a retry nor a valid new write.
			return WriteResult{}, true, &WrongExpectedVersionError{Stream: op.stream, Expected: op.expected, Current: st.Last}
		}
		pos = p
	}
	return WriteResult{Revision: int64(start) + int64(len(op.events)) - 1, Position: pos}, true, nil
}

func (bc *batchCtx) revOf(stream string, id uuid.UUID) (uint64, bool, error) {
	if rev, ok := bc.ids[stream][id]; ok {
		return rev, true, nil
	}
	v, closer, err := bc.s.db.Get(idemKey(stream, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	return binary.BigEndian.Uint64(v), true, nil
}

func (bc *batchCtx) eventAt(stream string, rev uint64) (uuid.UUID, uint64, bool, error) {
	if pe, ok := bc.revs[stream][rev]; ok {
		return pe.id, pe.pos, true, nil
	}
	v, closer, err := bc.s.db.Get(streamKey(stream, rev))
	if errors.Is(err, pebble.ErrNotFound) {
		return uuid.Nil, 0, false, nil
	}
	if err != nil {
		return uuid.Nil, 0, false, err
	}
	pos := binary.BigEndian.Uint64(v)
	closer.Close()
	rec, err := bc.s.record(pos)
	if err != nil {
		return uuid.Nil, 0, false, err
	}
	return rec.ID, pos, true, nil
}
