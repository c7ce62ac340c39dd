// Package eventstored is Fanfare's embedded single-node event store. It
// speaks the KurrentDB/EventStoreDB gRPC protocol (the generated server
// interfaces of EventStore-Client-Go/v4), so Fanfare's code talks to it with
// the official client exactly as it would to a real KurrentDB cluster.
//
// Storage is Pebble. Every acknowledged write was committed with fsync, so a
// kill -9 loses nothing that a client saw succeed.
package eventstored

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"
)

// Key space. One byte prefix per family keeps each family contiguous:
//
//	'L' pos(8)                       → record            ($all, in commit order)
//	'S' stream 0x00 rev(8)           → pos(8)            (per-stream index)
//	'I' stream 0x00 eventID(16)      → rev(8)            (idempotency index)
//	'M' stream                       → streamState       (last revision, deletion)
const (
	prefixLog    = 'L'
	prefixStream = 'S'
	prefixIdem   = 'I'
	prefixMeta   = 'M'
)

// TombstoneRevision is the revision of the $streamDeleted event, as in
// KurrentDB (long.MaxValue).
const TombstoneRevision = math.MaxInt64

// Record is one stored event.
type Record struct {
	Position       uint64
	Stream         string
	Revision       uint64
	ID             uuid.UUID
	Type           string
	ContentType    string
	Created        int64 // .NET ticks (100 ns) since the Unix epoch, as the protocol wants
	CustomMetadata []byte
	Data           []byte
}

// encodeRecord lays a record out as length-prefixed fields; the position is
// the key, so it is not repeated in the value.
func encodeRecord(r *Record) []byte {
	n := 1 + 2 + len(r.Stream) + 8 + 16 + 8 + 2 + len(r.Type) + 2 + len(r.ContentType) + 4 + len(r.CustomMetadata) + 4 + len(r.Data)
	b := make([]byte, 0, n)
	b = append(b, 1) // format version
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Stream)))
	b = append(b, r.Stream...)
	b = binary.BigEndian.AppendUint64(b, r.Revision)
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Type)))
	b = append(b, r.Type...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.ContentType)))
	b = append(b, r.ContentType...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.CustomMetadata)))
	b = append(b, r.CustomMetadata...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Data)))
	b = append(b, r.Data...)
	return b
}

var errCorrupt = errors.New("eventstored: corrupt record")

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
func (r *reader) u16() int {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}
func (r *reader) u32() int {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}
func (r *reader) u64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// decodeRecord decodes without copying the payloads: Data and
// CustomMetadata alias v, which Pebble only keeps valid until the iterator
// moves, so a Record from a scan is only valid inside its callback (the read
// path encodes it to a frame there and then).
func decodeRecord(pos uint64, v []byte) (*Record, error) {
	r := &reader{b: v}
	if ver := r.take(1); ver == nil || ver[0] != 1 {
		return nil, errCorrupt
	}
	rec := &Record{Position: pos}
	rec.Stream = string(r.take(r.u16()))
	rec.Revision = r.u64()
	copy(rec.ID[:], r.take(16))
	rec.Created = int64(r.u64())
	rec.Type = string(r.take(r.u16()))
	rec.ContentType = string(r.take(r.u16()))
	rec.CustomMetadata = r.take(r.u32())
	rec.Data = r.take(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	return rec, nil
}

func logKey(pos uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixLog}, pos)
}

func streamPrefix(p byte, stream string) []byte {
	b := make([]byte, 0, 1+len(stream)+1+16)
	b = append(b, p)
	b = append(b, stream...)
	return append(b, 0)
}

func streamKey(stream string, rev uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(prefixStream, stream), rev)
}

func idemKey(stream string, id uuid.UUID) []byte {
	return append(streamPrefix(prefixIdem, stream), id[:]...)
}

func metaKey(stream string) []byte {
	return append([]byte{prefixMeta}, stream...)
}

// streamState is what the writer must know about a stream to check an
// expected revision.
type streamState struct {
	Last        int64 // last revision written; -1 when the stream never had an event
	TB          int64 // truncate-before: revisions below it are hidden (soft delete)
	SoftDeleted bool  // deleted and not written to since
	Tombstoned  bool
}

func (s streamState) encode() []byte {
	b := make([]byte, 0, 18)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Last))
	b = binary.BigEndian.AppendUint64(b, uint64(s.TB))
	var flags byte
	if s.SoftDeleted {
		flags |= 1
	}
	if s.Tombstoned {
		flags |= 2
	}
	return append(b, flags)
}

func decodeStreamState(v []byte) (streamState, error) {
	if len(v) != 17 {
		return streamState{}, errCorrupt
	}
	return streamState{
		Last:        int64(binary.BigEndian.Uint64(v)),
		TB:          int64(binary.BigEndian.Uint64(v[8:])),
		SoftDeleted: v[16]&1 != 0,
		Tombstoned:  v[16]&2 != 0,
	}, nil
}

// visible reports whether any event of the stream can be read.
func (s streamState) visible() bool {
	return !s.Tombstoned && !s.SoftDeleted && s.Last >= 0 && s.Last >= s.TB
}

// Store is the storage engine: one Pebble database, one writer goroutine.
type Store struct {
	db *pebble.DB

	writes chan *writeOp
	done   chan struct{}
	wg     sync.WaitGroup

	// head is the position of the last committed event; notify is closed
	// (and replaced) on every commit so live subscriptions wake up.
	mu     sync.Mutex
	head   uint64
	notify chan struct{}
	closed bool

	// Writer-owned state (only the writer goroutine touches these).
	nextPos uint64
	states  map[string]streamState

	maxBatch int
}

// Options tune a Store.
type Options struct {
	// MaxBatch bounds how many write requests the writer folds into one
	// fsync'd commit.
	MaxBatch int
	// Now is the clock used to stamp events; defaults to time.Now.
	Now func() time.Time
}

var errStoreClosed = errors.New("eventstored: store is closed")

// OpenStore opens (or creates) the store in dir.
func OpenStore(dir string, opts Options) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{
		Logger: quietLogger{},
		// A bigger memtable keeps bursts of appends off the flush path.
		MemTableSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("open event store in %s: %w", dir, err)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	s := &Store{
		db:       db,
		writes:   make(chan *writeOp, 4096),
		done:     make(chan struct{}),
		notify:   make(chan struct{}),
		states:   make(map[string]streamState),
		maxBatch: opts.MaxBatch,
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	last, err := s.lastPosition()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.head = last
	s.nextPos = last + 1
	s.wg.Add(1)
	go s.writer(now)
	return s, nil
}

func (s *Store) lastPosition() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// Close stops the writer (pending writes fail) and closes Pebble.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.notify)
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	return s.db.Close()
}

// Head returns the position of the last committed event and a channel that
// is closed when a later commit happens (or the store closes).
func (s *Store) Head() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head, s.notify
}

func (s *Store) published(head uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.head = head
	close(s.notify)
	s.notify = make(chan struct{})
}

// State returns the committed state of a stream.
func (s *Store) State(stream string) (streamState, error) {
	v, closer, err := s.db.Get(metaKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return streamState{Last: -1}, nil
	}
	if err != nil {
		return streamState{}, err
	}
	defer closer.Close()
	return decodeStreamState(v)
}

// ReadAll calls fn for events in $all order from pos (inclusive) forwards, or
// below pos backwards, until fn returns false. The Record is only valid
// during the call.
func (s *Store) ReadAll(pos uint64, backwards bool, fn func(*Record) (bool, error)) error {
	opts := &pebble.IterOptions{LowerBound: logKey(pos), UpperBound: []byte{prefixLog + 1}}
	if backwards {
		opts = &pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: logKey(pos)}
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer it.Close()
	step := it.Next
	ok := it.First()
	if backwards {
		step = it.Prev
		ok = it.Last()
	}
	for ; ok; ok = step() {
		rec, err := decodeRecord(binary.BigEndian.Uint64(it.Key()[1:]), it.Value())
		if err != nil {
			return err
		}
		more, err := fn(rec)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// ReadStream calls fn for the stream's events from rev (inclusive), forwards
// or backwards, until fn returns false.
func (s *Store) ReadStream(stream string, rev uint64, backwards bool, fn func(*Record) (bool, error)) error {
	prefix := streamPrefix(prefixStream, stream)
	upper := append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	opts := &pebble.IterOptions{LowerBound: streamKey(stream, rev), UpperBound: upper}
	if backwards {
		hi := upper
		if rev < math.MaxUint64 {
			hi = streamKey(stream, rev+1)
		}
		opts = &pebble.IterOptions{LowerBound: prefix, UpperBound: hi}
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer it.Close()
	step := it.Next
	ok := it.First()
	if backwards {
		step = it.Prev
		ok = it.Last()
	}
	for ; ok; ok = step() {
		pos := binary.BigEndian.Uint64(it.Value())
		rec, err := s.record(pos)
		if err != nil {
			return err
		}
		more, err := fn(rec)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func (s *Store) record(pos uint64) (*Record, error) {
	v, closer, err := s.db.Get(logKey(pos))
	if err != nil {
		return nil, fmt.Errorf("eventstored: read position %d: %w", pos, err)
	}
	defer closer.Close()
	rec, err := decodeRecord(pos, v)
	if err != nil {
		return nil, err
	}
	// The value buffer goes back to Pebble on return: keep copies.
	rec.CustomMetadata = append([]byte(nil), rec.CustomMetadata...)
	rec.Data = append([]byte(nil), rec.Data...)
	return rec, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	fmt.Printf("eventstored: pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("eventstored: pebble: "+format, args...))
}
