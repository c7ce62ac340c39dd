package events

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

var (
	// ErrUnknownType is returned for a type name or message that is not a
	// registered event.
	ErrUnknownType = errors.New("unknown event type")
	// ErrMalformed is returned when event data does not decode as its type.
	ErrMalformed = errors.New("malformed event data")
)

const (
	// version is the schema version of every current event type.
	version = "v1"
	// protoPackage is the proto package of every event message.
	protoPackage = "fanfare.events." + version
)

// sharedFile is the file in protoPackage that holds value types, not events.
const sharedFile = "common"

// registry maps type names to message types and back. It is built once from
// the generated descriptors and never changes.
type registry struct {
	byName     map[string]*eventType
	byFullName map[protoreflect.FullName]*eventType
	names      []string // sorted type names
}

type eventType struct {
	name    string // fanfare.<service>.v1.<Message>
	service string
	mt      protoreflect.MessageType
}

var reg = buildRegistry()

// buildRegistry applies the naming rule (see the package doc) to the files of
// protoPackage. It panics if generated code breaks the rule, which a test run
// shows at once; the fix is in the .proto files.
func buildRegistry() *registry {
	// Importing the generated package registered its files.
	_ = eventsv1.File_fanfare_events_v1_common_proto
	r := &registry{
		byName:     map[string]*eventType{},
		byFullName: map[protoreflect.FullName]*eventType{},
	}
	protoregistry.GlobalFiles.RangeFilesByPackage(protoPackage, func(fd protoreflect.FileDescriptor) bool {
		service := strings.TrimSuffix(path.Base(fd.Path()), ".proto")
		if service == sharedFile {
			return true
		}
		msgs := fd.Messages()
		for i := range msgs.Len() {
			md := msgs.Get(i)
			typeName := "fanfare." + service + "." + version + "." + string(md.Name())
			if err := checkTypeName(typeName); err != nil {
				panic(fmt.Sprintf("events: file %s: %v", fd.Path(), err))
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				panic(fmt.Sprintf("events: file %s: message %s has no Go type: %v", fd.Path(), md.FullName(), err))
			}
			et := &eventType{name: typeName, service: service, mt: mt}
			r.byName[typeName] = et
			r.byFullName[md.FullName()] = et
			r.names = append(r.names, typeName)
		}
		return true
	})
	if len(r.names) == 0 {
		panic("events: no event messages in proto package " + protoPackage)
	}
	slices.Sort(r.names)
	return r
}

// typeNamePattern is the form of every type name, current or historical.
var typeNamePattern = regexp.MustCompile(`^fanfare\.[a-z][a-z0-9_]*\.v[0-9]+\.[A-Z][A-Za-z0-9_]*$`)

// checkTypeName reports whether typeName has the form
// fanfare.<service>.v<N>.<Message>; it does not check that it is registered.
func checkTypeName(typeName string) error {
	if !typeNamePattern.MatchString(typeName) {
		return fmt.Errorf("type name %q is not fanfare.<service>.v<N>.<Message>", typeName)
	}
	return nil
}

func lookup(typeName string) (*eventType, error) {
	et, ok := reg.byName[typeName]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typeName)
	}
	return et, nil
}

// TypeName returns the type name of an event message, e.g.
// "fanfare.accounts.v1.DepositConfirmed" for *eventsv1.DepositConfirmed. A
// typed nil pointer is named like its type.
//
// Errors: ErrUnknownType when msg is nil or not an event (a value type from
// common.proto, a nested message, a message of another package).
func TypeName(msg proto.Message) (string, error) {
	if msg == nil {
		return "", fmt.Errorf("%w: nil message", ErrUnknownType)
	}
	full := msg.ProtoReflect().Descriptor().FullName()
	et, ok := reg.byFullName[full]
	if !ok {
		return "", fmt.Errorf("%w: message %s is not an event", ErrUnknownType, full)
	}
	return et.name, nil
}

// New returns a new, empty message of the event type.
//
// Errors: ErrUnknownType.
func New(typeName string) (proto.Message, error) {
	et, err := lookup(typeName)
	if err != nil {
		return nil, err
	}
	return et.mt.New().Interface(), nil
}

// Service returns the service that owns the event type: "accounts" for
// "fanfare.accounts.v1.DepositConfirmed".
//
// Errors: ErrUnknownType.
func Service(typeName string) (string, error) {
	et, err := lookup(typeName)
	if err != nil {
		return "", err
	}
	return et.service, nil
}

// Topic returns the Kafka topic events of the type are published on: the
// type name without the message, fanfare.<service>.v1.
//
// Errors: ErrUnknownType.
func Topic(typeName string) (string, error) {
	if _, err := lookup(typeName); err != nil {
		return "", err
	}
	return typeName[:strings.LastIndexByte(typeName, '.')], nil
}

// Types returns every registered type name, sorted.
func Types() []string {
	return slices.Clone(reg.names)
}

// Encode returns the type name and the deterministic binary protobuf encoding
// of an event message: what is appended to the event store.
//
// Errors: ErrUnknownType; marshalling errors (invalid UTF-8 in a string
// field).
func Encode(msg proto.Message) (typeName string, data []byte, err error) {
	typeName, err = TypeName(msg)
	if err != nil {
		return "", nil, err
	}
	data, err = proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", typeName, err)
	}
	return typeName, data, nil
}

// Decode turns stored event data of the given type into its message. It
// applies the registered upcasters first (see Upcast), so the message may be
// of a newer type than typeName; TypeName tells which.
//
// Errors: ErrUnknownType when the (upcast) type is not registered;
// ErrMalformed when the data does not decode as that type; ErrUpcast when an
// upcaster fails.
func Decode(typeName string, data []byte) (proto.Message, error) {
	typeName, data, err := Upcast(typeName, data)
	if err != nil {
		return nil, err
	}
	msg, err := New(typeName)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, typeName, err)
	}
	return msg, nil
}
