package eventstored

import (
	"testing"

	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// The hand-encoded frame must decode to exactly the message readEvent builds.
func TestFrameMatchesGeneratedEncoding(t *testing.T) {
	recs := []*Record{
		{Position: 12345, Stream: "bench-100-3-abcdef12", Revision: 77, ID: uuid.New(), Type: "BenchEvent", ContentType: "application/json", Created: 17234567890123, CustomMetadata: []byte(`{"a":1}`), Data: []byte(`{"x":2}`)},
		{Position: 1, Stream: "s", Revision: 0, ID: uuid.MustParse("00000000-0000-0001-8000-000000000000"), Type: "T", ContentType: "application/octet-stream", Created: 0},
		{Position: 1 << 40, Stream: "$$s", Revision: TombstoneRevision, ID: uuid.MustParse("ffffffff-ffff-ffff-ffff-ffffffffffff"), Type: "$streamDeleted", ContentType: "", Created: -5, Data: make([]byte, 300)},
	}
	for _, r := range recs {
		for _, structured := range []bool{true, false} {
			for _, all := range []bool{true, false} {
				var got api.ReadResp
				if err := proto.Unmarshal(appendReadEvent(nil, r, structured, all), &got); err != nil {
					t.Fatal(err)
				}
				want := readEvent(r, structured, all)
				if !proto.Equal(&got, want) {
					t.Fatalf("frame for %+v (structured=%v all=%v) decodes to\n%v\nwant\n%v", r, structured, all, &got, want)
				}
			}
		}
	}
}

func BenchmarkFrame(b *testing.B) {
	r := &Record{Position: 12345, Stream: "bench-100-3-abcdef12", Revision: 77, ID: uuid.New(), Type: "BenchEvent", ContentType: "application/octet-stream", Created: 1234567890123, Data: make([]byte, 200)}
	buf := make([]byte, 0, 512)
	for i := 0; i < b.N; i++ {
		buf = appendReadEvent(buf[:0], r, true, true)
	}
}

// readEvent builds the reference message with the generated types.
func readEvent(r *Record, structured bool, all bool) *api.ReadResp {
	ev := &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toProtoUUID(r.ID, structured),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.Stream)},
			StreamRevision:   r.Revision,
			PreparePosition:  r.Position,
			CommitPosition:   r.Position,
			Metadata: map[string]string{
				"type":         r.Type,
				"content-type": r.ContentType,
				"created":      strconv.FormatInt(r.Created, 10),
			},
			CustomMetadata: r.CustomMetadata,
			Data:           r.Data,
		},
	}
	if all {
		ev.Position = &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Position}
	} else {
		ev.Position = &api.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}}
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: ev}}
}
