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
// commit_position|no_position}} — field numbers from streams.proto. Sizes
// are computed first so the frame is written in one allocation.
func appendReadEvent(b []byte, r *Record, structured, all bool) []byte {
	var createdBuf [20]byte
	created := strconv.AppendInt(createdBuf[:0], r.Created, 10)
	var most, least uint64
	for i := 0; i < 8; i++ {
		most = most<<8 | uint64(r.ID[i])
		least = least<<8 | uint64(r.ID[8+i])
	}

	// Sizes, innermost first.
	var idStr string
	var structLen, idBody int
	if structured {
		if most != 0 {
			structLen += 1 + protowire.SizeVarint(most)
		}
		if least != 0 {
			structLen += 1 + protowire.SizeVarint(least)
		}
		idBody = 1 + protowire.SizeBytes(structLen)
	} else {
		idStr = r.ID.String()
		idBody = 1 + protowire.SizeBytes(len(idStr))
	}
	streamBody := 1 + protowire.SizeBytes(len(r.Stream))
	entry := func(k, v int) int { return 1 + protowire.SizeBytes(k) + 1 + protowire.SizeBytes(v) }
	meta := [3][2]string{{"type", r.Type}, {"content-type", r.ContentType}, {"created", string(created)}}
	var metaBody [3]int
	rec := 1 + protowire.SizeBytes(idBody) + 1 + protowire.SizeBytes(streamBody)
	for _, v := range [...]uint64{r.Revision, r.Position, r.Position} {
		if v != 0 {
			rec += 1 + protowire.SizeVarint(v)
		}
	}
	for i, kv := range meta {
		metaBody[i] = entry(len(kv[0]), len(kv[1]))
		rec += 1 + protowire.SizeBytes(metaBody[i])
	}
	if len(r.CustomMetadata) > 0 {
		rec += 1 + protowire.SizeBytes(len(r.CustomMetadata))
	}
	if len(r.Data) > 0 {
		rec += 1 + protowire.SizeBytes(len(r.Data))
	}
	ev := 1 + protowire.SizeBytes(rec)
	if all {
		ev += 1 + protowire.SizeVarint(r.Position)
	} else {
		ev += 2 // no_position: an empty message
	}
	if total := 1 + protowire.SizeBytes(ev); cap(b)-len(b) < total {
		b = append(make([]byte, 0, len(b)+total), b...)
	}

	b = protowire.AppendTag(b, 1, protowire.BytesType) // ReadResp.event
	b = protowire.AppendVarint(b, uint64(ev))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // ReadEvent.event
	b = protowire.AppendVarint(b, uint64(rec))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // RecordedEvent.id
	b = protowire.AppendVarint(b, uint64(idBody))
	if structured {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(structLen))
		if most != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, most)
		}
		if least != 0 {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, least)
		}
	} else {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, idStr)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType) // stream_identifier{stream_name=3}
	b = protowire.AppendVarint(b, uint64(streamBody))
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, r.Stream)
	for _, f := range [...]struct {
		num protowire.Number
		v   uint64
	}{{3, r.Revision}, {4, r.Position}, {5, r.Position}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, f.v)
		}
	}
	for i, kv := range meta {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(metaBody[i]))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, kv[0])
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, kv[1])
	}
	if len(r.CustomMetadata) > 0 {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, r.CustomMetadata)
	}
	if len(r.Data) > 0 {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Data)
	}
	if all {
		b = protowire.AppendTag(b, 3, protowire.VarintType) // ReadEvent.commit_position
		b = protowire.AppendVarint(b, r.Position)
	} else {
		b = protowire.AppendTag(b, 4, protowire.BytesType) // ReadEvent.no_position
		b = protowire.AppendVarint(b, 0)
	}
	return b
}
