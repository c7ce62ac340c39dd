package eventstore

import (
	"bytes"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/protobuf/proto"
)

// parseReadResp reads what the generated types write (any event the
// server can send: structured or string ids, extra system metadata, a
// link, no position), and never panics on garbage.
func FuzzParseReadResp(f *testing.F) {
	f.Add("stream-1", uint64(3), uint64(1234), int64(-5), int64(77), "fanfare.x.v1.Y", []byte("data"), []byte("{}"), false, []byte{0x0a, 0x02, 0x0a, 0x00})
	f.Add("", uint64(0), uint64(0), int64(0), int64(0), "", []byte(nil), []byte(nil), true, []byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, stream string, rev, pos uint64, most, least int64, typ string, data, meta []byte, stringID bool, garbage []byte) {
		var in interner
		var ev RawEvent
		parseReadResp(garbage, &ev, &in) // must not panic

		id := &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}}
		want, err := esdb.ParseUUIDFromInt64(most, least)
		if err != nil {
			return // no such id on the wire
		}
		if stringID {
			id = &shared.UUID{Value: &shared.UUID_String_{String_: want.String()}}
		}
		resp := &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
			Event: &api.ReadResp_ReadEvent_RecordedEvent{
				Id: id, StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
				StreamRevision: rev, PreparePosition: pos, CommitPosition: pos,
				Metadata:       map[string]string{"type": typ, "content-type": "application/octet-stream", "created": "1"},
				CustomMetadata: meta, Data: data,
			},
			Link:     &api.ReadResp_ReadEvent_RecordedEvent{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("link")}, Metadata: map[string]string{"type": "$>"}},
			Position: &api.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}},
		}}}
		frame, err := proto.Marshal(resp)
		if err != nil {
			return // invalid UTF-8 in a string: a server cannot send it either
		}
		ev = RawEvent{}
		ok, err := parseReadResp(frame, &ev, &in)
		if err != nil || !ok {
			t.Fatalf("parse: %v, %v", ok, err)
		}
		if ev.Stream != stream || ev.Revision != rev || ev.Position != pos || ev.ID != want || ev.Type != typ ||
			!bytes.Equal(ev.Data, data) || !bytes.Equal(ev.Metadata, meta) {
			t.Fatalf("parsed %+v from %v", ev, resp)
		}

		// Responses that are not events are passed over.
		other, _ := proto.Marshal(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: pos}}})
		if ok, err := parseReadResp(other, &ev, &in); ok || err != nil {
			t.Fatalf("a checkpoint parsed as an event: %v, %v", ok, err)
		}
	})
}
