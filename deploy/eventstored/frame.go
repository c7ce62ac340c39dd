package eventstored

import (
	"strconv"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Reads send one message per event, so encoding dominates the read path.
// frame is a ReadResp already encoded by hand (appendReadEvent), which the
// codec below passes through untouched; every other message goes through
// the standard protobuf codec. The test decodes these frames with the
// generated types and compares them with readEvent's messages.
type frame []byte

type frameCodec struct{ proto encoding.CodecV2 }

func newFrameCodec() frameCodec { return frameCodec{proto: encoding.GetCodecV2("proto")} }

func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(frame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f)}, nil
	}
	return c.proto.Marshal(v)
}

func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }
func (c frameCodec) Name() string                                { return "proto" }

// appendReadEvent encodes ReadResp{event: ReadEvent{event: RecordedEvent{…},
// commit_position|no_position}} — field numbers from streams.proto.
func appendReadEvent(b []byte, r *Record, structured, all bool) []byte {
	var created [20]byte
	createdStr := strconv.AppendInt(created[:0], r.Created, 10)

	// RecordedEvent
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.BytesType) // id
	if structured {
		most := int64(0)
		least := int64(0)
		for i := 0; i < 8; i++ {
			most = most<<8 | int64(r.ID[i])
			least = least<<8 | int64(r.ID[8+i])
		}
		var s []byte
		if most != 0 {
			s = protowire.AppendTag(s, 1, protowire.VarintType)
			s = protowire.AppendVarint(s, uint64(most))
		}
		if least != 0 {
			s = protowire.AppendTag(s, 2, protowire.VarintType)
			s = protowire.AppendVarint(s, uint64(least))
		}
		rec = protowire.AppendVarint(rec, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(s))))
		rec = protowire.AppendTag(rec, 1, protowire.BytesType)
		rec = protowire.AppendBytes(rec, s)
	} else {
		id := r.ID.String()
		rec = protowire.AppendVarint(rec, uint64(protowire.SizeTag(2)+protowire.SizeBytes(len(id))))
		rec = protowire.AppendTag(rec, 2, protowire.BytesType)
		rec = protowire.AppendString(rec, id)
	}
	rec = protowire.AppendTag(rec, 2, protowire.BytesType) // stream_identifier{stream_name=3}
	rec = protowire.AppendVarint(rec, uint64(protowire.SizeTag(3)+protowire.SizeBytes(len(r.Stream))))
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendString(rec, r.Stream)
	for _, f := range [...]struct {
		num protowire.Number
		v   uint64
	}{{3, r.Revision}, {4, r.Position}, {5, r.Position}} {
		if f.v != 0 {
			rec = protowire.AppendTag(rec, f.num, protowire.VarintType)
			rec = protowire.AppendVarint(rec, f.v)
		}
	}
	for _, kv := range [...][2][]byte{
		{[]byte("type"), []byte(r.Type)},
		{[]byte("content-type"), []byte(r.ContentType)},
		{[]byte("created"), createdStr},
	} {
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(kv[0])) + protowire.SizeTag(2) + protowire.SizeBytes(len(kv[1]))
		rec = protowire.AppendTag(rec, 6, protowire.BytesType)
		rec = protowire.AppendVarint(rec, uint64(n))
		rec = protowire.AppendTag(rec, 1, protowire.BytesType)
		rec = protowire.AppendBytes(rec, kv[0])
		rec = protowire.AppendTag(rec, 2, protowire.BytesType)
		rec = protowire.AppendBytes(rec, kv[1])
	}
	if len(r.CustomMetadata) > 0 {
		rec = protowire.AppendTag(rec, 7, protowire.BytesType)
		rec = protowire.AppendBytes(rec, r.CustomMetadata)
	}
	if len(r.Data) > 0 {
		rec = protowire.AppendTag(rec, 8, protowire.BytesType)
		rec = protowire.AppendBytes(rec, r.Data)
	}

	// ReadEvent
	ev := protowire.AppendTag(nil, 1, protowire.BytesType)
	ev = protowire.AppendBytes(ev, rec)
	if all {
		ev = protowire.AppendTag(ev, 3, protowire.VarintType)
		ev = protowire.AppendVarint(ev, r.Position)
	} else {
		ev = protowire.AppendTag(ev, 4, protowire.BytesType)
		ev = protowire.AppendVarint(ev, 0)
	}

	// ReadResp
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ev)
}
