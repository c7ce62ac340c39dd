package events

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Check reports whether stored event data would decode, as Decode would
// decide it (upcasters applied, the same errors), without building the
// message. Readers that only need to know an event is sound (the audit
// checks every event, interprets a few) save an allocation per field.
func Check(typeName string, data []byte) error {
	typeName, data, err := Upcast(typeName, data)
	if err != nil {
		return err
	}
	et, err := lookup(typeName)
	if err != nil {
		return err
	}
	if err := checkMessage(et.mt.Descriptor(), data, 0); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, typeName, err)
	}
	return nil
}

// maxDepth is protobuf-go's default recursion limit.
const maxDepth = 10000

// checkMessage walks data as an encoding of md: what protobuf-go's
// unmarshal rejects is rejected here (bad tags and lengths, truncated
// values, invalid UTF-8 in a string, a bad nested message); a known field
// sent with another wire type is kept as an unknown field there, so it
// only has to be well formed here.
func checkMessage(md protoreflect.MessageDescriptor, b []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("exceeded maximum recursion depth")
	}
	fds := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num < protowire.MinValidNumber || num > protowire.MaxValidNumber {
			return fmt.Errorf("invalid field number %d", num)
		}
		b = b[n:]
		fd := fds.ByNumber(num)
		if fd != nil && typ == protowire.BytesType && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.StringKind) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if fd.Kind() == protoreflect.StringKind {
				if !utf8.Valid(v) {
					return fmt.Errorf("field %s contains invalid UTF-8", fd.FullName())
				}
			} else if err := checkMessage(fd.Message(), v, depth+1); err != nil {
				return err
			}
			continue
		}
		if fd != nil && typ == protowire.BytesType && fd.IsList() {
			if w, ok := packedWire(fd.Kind()); ok {
				v, n := protowire.ConsumeBytes(b)
				if n < 0 {
					return protowire.ParseError(n)
				}
				b = b[n:]
				if err := checkPacked(w, v); err != nil {
					return fmt.Errorf("field %s: %w", fd.FullName(), err)
				}
				continue
			}
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// packedWire is the wire type of one element of a packed repeated field of
// kind k, if k can be packed.
func packedWire(k protoreflect.Kind) (protowire.Type, bool) {
	switch k {
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind,
		protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		return protowire.VarintType, true
	case protoreflect.Sfixed32Kind, protoreflect.Fixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type, true
	case protoreflect.Sfixed64Kind, protoreflect.Fixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type, true
	}
	return 0, false
}

func checkPacked(w protowire.Type, v []byte) error {
	for len(v) > 0 {
		n := protowire.ConsumeFieldValue(1, w, v)
		if n < 0 {
			return protowire.ParseError(n)
		}
		v = v[n:]
	}
	return nil
}
