package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// SnapshotStream is where the snapshots of stream go. Its events are not
// Fanfare events (their type lacks the "fanfare." prefix), so the
// forwarder and CatchUp pass them by.
func SnapshotStream(stream string) string { return "snapshot-" + stream }

// snapshotChunk bounds one snapshot event's data so each append stays under
// the store's 1 MiB limit with its metadata.
const snapshotChunk = 900 << 10

const snapshotType = "fanfare-snapshot"

// snapshotMeta is a snapshot event's metadata: the stream revision it
// covers and which of its snapshot's parts it is. Events written before
// snapshots had parts carry only the revision: one part.
type snapshotMeta struct {
	Revision uint64 `json:"revision"`
	ID       string `json:"id,omitempty"`
	Part     int    `json:"part,omitempty"`
	Parts    int    `json:"parts,omitempty"`
}

// SaveSnapshot stores data as the state of stream after revision rev, in
// as many parts as the append limit needs. Parts of one snapshot share an
// id and the last is written last, so a reader never takes a snapshot
// whose writer died half-way, nor mixes two writers' parts.
func (s *Store) SaveSnapshot(ctx context.Context, stream string, rev uint64, data []byte) error {
	id := uuid.NewString()
	parts := max(1, (len(data)+snapshotChunk-1)/snapshotChunk)
	for i := range parts {
		chunk := data[i*snapshotChunk : min(len(data), (i+1)*snapshotChunk)]
		meta, err := json.Marshal(snapshotMeta{Revision: rev, ID: id, Part: i, Parts: parts})
		if err != nil {
			return err
		}
		if _, err := s.Client.AppendToStream(ctx, SnapshotStream(stream), esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
			esdb.EventData{EventType: snapshotType, ContentType: esdb.ContentTypeBinary, Data: chunk, Metadata: meta}); err != nil {
			return fmt.Errorf("snapshot of %s: %w", stream, err)
		}
	}
	return nil
}

// snapshotScan bounds how far back LoadSnapshot looks for a complete
// snapshot (several writers may interleave their parts).
const snapshotScan = 4096

// LoadSnapshot returns the newest complete snapshot of stream and the
// revision it covers; found is false when there is none.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (rev uint64, data []byte, found bool, err error) {
	rs, err := s.Client.ReadStream(ctx, SnapshotStream(stream), esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, snapshotScan)
	if err != nil {
		return 0, nil, false, fmt.Errorf("read snapshot of %s: %w", stream, err)
	}
	defer rs.Close()
	var (
		want  string
		parts [][]byte
		left  int
	)
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) || isCode(err, esdb.ErrorCodeResourceNotFound) {
			return 0, nil, false, nil
		}
		if err != nil {
			return 0, nil, false, fmt.Errorf("read snapshot of %s: %w", stream, err)
		}
		ev := re.OriginalEvent()
		var m snapshotMeta
		if ev.EventType != snapshotType || json.Unmarshal(ev.UserMetadata, &m) != nil {
			continue
		}
		if m.Parts == 0 {
			m.Parts = 1
		}
		if m.Part < 0 || m.Part >= m.Parts {
			continue
		}
		if want == "" {
			if m.Part != m.Parts-1 {
				continue // the tail of a snapshot whose writer stopped half-way
			}
			want, parts, left, rev = "id:"+m.ID, make([][]byte, m.Parts), m.Parts, m.Revision
		}
		if "id:"+m.ID != want || m.Revision != rev || parts[m.Part] != nil {
			continue
		}
		parts[m.Part] = ev.Data
		if left--; left == 0 {
			return rev, bytes.Join(parts, nil), true, nil
		}
	}
}

// saveMessage stores a snapshot message (as Any, so loading needs no type).
func (s *Store) saveMessage(ctx context.Context, stream string, rev uint64, msg proto.Message) error {
	data, err := marshalSnapshot(msg)
	if err != nil {
		return err
	}
	return s.SaveSnapshot(ctx, stream, rev, data)
}

func marshalSnapshot(msg proto.Message) ([]byte, error) {
	a, err := anypb.New(msg)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(a)
}

// loadMessage returns the newest snapshot message of stream.
func (s *Store) loadMessage(ctx context.Context, stream string) (uint64, proto.Message, bool, error) {
	rev, data, found, err := s.LoadSnapshot(ctx, stream)
	if err != nil || !found {
		return 0, nil, false, err
	}
	var a anypb.Any
	if err := proto.Unmarshal(data, &a); err != nil {
		return 0, nil, false, fmt.Errorf("snapshot of %s: %w", stream, err)
	}
	msg, err := a.UnmarshalNew()
	if err != nil {
		return 0, nil, false, fmt.Errorf("snapshot of %s: %w", stream, err)
	}
	return rev, msg, true, nil
}
