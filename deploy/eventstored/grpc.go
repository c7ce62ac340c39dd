package eventstored

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServerVersion is what GetSupportedMethods reports; the client only uses it
// to decide which features to use.
const ServerVersion = "24.10.0"

// DefaultMaxAppendSize is KurrentDB's default limit on one append's payload.
const DefaultMaxAppendSize = 1 << 20

type streamsServer struct {
	api.UnimplementedStreamsServer
	store         *Store
	maxAppendSize int
}

// protocol errors carry KurrentDB's "exception" trailer, which the official
// client turns into typed errors.
func exception(ctx context.Context, code codes.Code, exc string, kv map[string]string, msg string) error {
	md := metadata.Pairs("exception", exc)
	for k, v := range kv {
		md.Append(k, v)
	}
	_ = grpc.SetTrailer(ctx, md)
	return status.Error(code, msg)
}

func toStatus(ctx context.Context, err error) error {
	var wev *WrongExpectedVersionError
	var del *StreamDeletedError
	switch {
	case errors.As(err, &del):
		return exception(ctx, codes.FailedPrecondition, "stream-deleted", map[string]string{"stream-name": del.Stream}, err.Error())
	case errors.As(err, &wev):
		cur := "-1"
		if wev.Current >= 0 {
			cur = strconv.FormatInt(wev.Current, 10)
		}
		return exception(ctx, codes.FailedPrecondition, "wrong-expected-version",
			map[string]string{"expected-version": wev.Expected.String(), "actual-version": cur}, err.Error())
	case errors.Is(err, errStoreClosed):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func streamName(id *shared.StreamIdentifier) (string, error) {
	if id == nil || len(id.StreamName) == 0 {
		return "", invalid("stream name is required")
	}
	if len(id.StreamName) > math.MaxUint16 {
		return "", invalid("stream name is longer than %d bytes", math.MaxUint16)
	}
	return string(id.StreamName), nil
}

func parseUUID(id *shared.UUID) (uuid.UUID, error) {
	switch v := id.GetValue().(type) {
	case *shared.UUID_Structured_:
		var u uuid.UUID
		binaryPutInt64(u[:8], v.Structured.MostSignificantBits)
		binaryPutInt64(u[8:], v.Structured.LeastSignificantBits)
		return u, nil
	case *shared.UUID_String_:
		u, err := uuid.Parse(v.String_)
		if err != nil {
			return uuid.Nil, invalid("event id %q is not a UUID", v.String_)
		}
		return u, nil
	default:
		return uuid.Nil, invalid("event id is required")
	}
}

func binaryPutInt64(b []byte, v int64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func toProtoUUID(u uuid.UUID, structured bool) *shared.UUID {
	if !structured {
		return &shared.UUID{Value: &shared.UUID_String_{String_: u.String()}}
	}
	var most, least int64
	for i := 0; i < 8; i++ {
		most = most<<8 | int64(u[i])
		least = least<<8 | int64(u[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: most, LeastSignificantBits: least}}}
}

func expectedFrom(opts interface {
	GetRevision() uint64
	GetNoStream() *shared.Empty
	GetAny() *shared.Empty
	GetStreamExists() *shared.Empty
}) Expected {
	switch {
	case opts.GetAny() != nil:
		return Expected{Kind: ExpectAny}
	case opts.GetNoStream() != nil:
		return Expected{Kind: ExpectNoStream}
	case opts.GetStreamExists() != nil:
		return Expected{Kind: ExpectStreamExists}
	}
	return Expected{Kind: ExpectExact, Rev: opts.GetRevision()}
}

func hasExpected(o any) bool {
	switch v := o.(type) {
	case *api.AppendReq_Options:
		return v.ExpectedStreamRevision != nil
	case *api.DeleteReq_Options:
		return v.ExpectedStreamRevision != nil
	case *api.TombstoneReq_Options:
		return v.ExpectedStreamRevision != nil
	}
	return false
}

func (s *streamsServer) Append(srv api.Streams_AppendServer) error {
	ctx := srv.Context()
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return invalid("the first append message must carry the options")
	}
	stream, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return err
	}
	if stream == "$all" {
		return invalid("$all cannot be written to")
	}
	if !hasExpected(opts) {
		return invalid("expected stream revision is required")
	}
	expected := expectedFrom(opts)
	var events []Proposed
	size := 0
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return invalid("append message %d carries no proposed event", len(events)+1)
		}
		id, err := parseUUID(pm.Id)
		if err != nil {
			return err
		}
		typ := pm.Metadata["type"]
		if typ == "" {
			return invalid("event %s has no type", id)
		}
		if len(typ) > math.MaxUint16 {
			return invalid("event %s: type longer than %d bytes", id, math.MaxUint16)
		}
		ct := pm.Metadata["content-type"]
		if ct == "" {
			ct = "application/octet-stream"
		}
		size += len(pm.Data) + len(pm.CustomMetadata)
		if size > s.maxAppendSize {
			// Keep reading nothing more: the whole append is refused.
			return exception(ctx, codes.InvalidArgument, "maximum-append-size-exceeded",
				map[string]string{"maximum-append-size": strconv.Itoa(s.maxAppendSize)},
				fmt.Sprintf("maximum append size of %d bytes exceeded", s.maxAppendSize))
		}
		events = append(events, Proposed{ID: id, Type: typ, ContentType: ct, CustomMetadata: pm.CustomMetadata, Data: pm.Data})
	}
	res, err := s.store.Append(stream, expected, events)
	var wev *WrongExpectedVersionError
	if errors.As(err, &wev) {
		w := &api.AppendResp_WrongExpectedVersion{}
		if wev.Current < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(wev.Current)}
			w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(wev.Current)}
		}
		switch expected.Kind {
		case ExpectAny:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		case ExpectNoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case ExpectStreamExists:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		default:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: expected.Rev}
		}
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}})
	}
	if err != nil {
		return toStatus(ctx, err)
	}
	ok := &api.AppendResp_Success{}
	if res.Revision < 0 {
		ok.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		ok.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.Revision)}
	}
	if res.Position == 0 {
		ok.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		ok.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: res.Position, PreparePosition: res.Position}}
	}
	return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: ok}})
}

func (s *streamsServer) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	opts := req.GetOptions()
	if opts == nil || !hasExpected(opts) {
		return nil, invalid("delete needs a stream and an expected revision")
	}
	stream, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return nil, err
	}
	expected := expectedFrom(opts)
	res, err := s.store.Delete(stream, expected)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: res.Position, PreparePosition: res.Position}}}, nil
}

func (s *streamsServer) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	opts := req.GetOptions()
	if opts == nil || !hasExpected(opts) {
		return nil, invalid("tombstone needs a stream and an expected revision")
	}
	stream, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return nil, err
	}
	expected := expectedFrom(opts)
	res, err := s.store.Tombstone(stream, expected)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: res.Position, PreparePosition: res.Position}}}, nil
}

// filter decides which events of a read or subscription reach the client.
type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
}

func newFilter(o *api.ReadReq_Options) (*filter, error) {
	fo := o.GetFilter()
	if fo == nil {
		return nil, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	switch v := fo.Filter.(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = v.EventType, true
	default:
		return nil, invalid("filter needs a stream identifier or event type expression")
	}
	if expr == nil || (len(expr.Prefix) == 0 && expr.Regex == "") {
		return nil, invalid("filter needs prefixes or a regex")
	}
	f.prefixes = expr.Prefix
	if expr.Regex != "" {
		re, err := regexp.Compile(expr.Regex)
		if err != nil {
			return nil, invalid("filter regex %q: %v", expr.Regex, err)
		}
		f.re = re
	}
	return f, nil
}

func (f *filter) match(r *Record) bool {
	if f == nil {
		return true
	}
	subject := r.Stream
	if f.onType {
		subject = r.Type
	}
	if f.re != nil && f.re.MatchString(subject) {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

func (s *streamsServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return invalid("read options are required")
	}
	f, err := newFilter(o)
	if err != nil {
		return err
	}
	structured := o.GetUuidOption().GetString_() == nil
	backwards := o.ReadDirection == api.ReadReq_Options_Backwards
	if o.GetSubscription() != nil {
		if backwards {
			return invalid("subscriptions read forwards only")
		}
		return s.subscribe(o, f, structured, srv)
	}
	count := o.GetCount()
	switch so := o.StreamOption.(type) {
	case *api.ReadReq_Options_All:
		return s.readAll(so.All, backwards, count, f, structured, srv)
	case *api.ReadReq_Options_Stream:
		return s.readStream(so.Stream, backwards, count, structured, srv)
	default:
		return invalid("read needs a stream or $all")
	}
}

func allStart(o *api.ReadReq_Options_AllOptions, backwards bool) (uint64, error) {
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		return 0, nil
	case *api.ReadReq_Options_AllOptions_End:
		return math.MaxUint64, nil
	case *api.ReadReq_Options_AllOptions_Position:
		if v.Position.CommitPosition < v.Position.PreparePosition {
			return 0, invalid("commit position %d is below prepare position %d", v.Position.CommitPosition, v.Position.PreparePosition)
		}
		return v.Position.CommitPosition, nil
	}
	return 0, invalid("$all read needs start, end or a position")
}

func (s *streamsServer) readAll(o *api.ReadReq_Options_AllOptions, backwards bool, count uint64, f *filter, structured bool, srv api.Streams_ReadServer) error {
	pos, err := allStart(o, backwards)
	if err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	ctx := srv.Context()
	var sent uint64
	err = s.store.ReadAll(pos, backwards, func(r *Record) (bool, error) {
		if !f.match(r) {
			return true, nil
		}
		if err := srv.SendMsg(frame(appendReadEvent(nil, r, structured, true))); err != nil {
			return false, err
		}
		sent++
		return sent < count && ctx.Err() == nil, nil
	})
	if err != nil {
		return toStatus(ctx, err)
	}
	return nil
}

func streamNotFound(stream string) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}}}
}

func (s *streamsServer) readStream(o *api.ReadReq_Options_StreamOptions, backwards bool, count uint64, structured bool, srv api.Streams_ReadServer) error {
	stream, err := streamName(o.GetStreamIdentifier())
	if err != nil {
		return err
	}
	ctx := srv.Context()
	st, err := s.store.State(stream)
	if err != nil {
		return toStatus(ctx, err)
	}
	if st.Tombstoned {
		return toStatus(ctx, &StreamDeletedError{Stream: stream})
	}
	if !st.visible() {
		return srv.Send(streamNotFound(stream))
	}
	var rev uint64
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		rev = 0
	case *api.ReadReq_Options_StreamOptions_End:
		rev = math.MaxUint64
	case *api.ReadReq_Options_StreamOptions_Revision:
		rev = v.Revision
	default:
		return invalid("stream read needs start, end or a revision")
	}
	if count == 0 {
		return nil
	}
	if !backwards && rev == math.MaxUint64 {
		return nil
	}
	var sent uint64
	err = s.store.ReadStream(stream, rev, backwards, func(r *Record) (bool, error) {
		if int64(r.Revision) < st.TB {
			return !backwards, nil // hidden by a soft delete
		}
		if err := srv.SendMsg(frame(appendReadEvent(nil, r, structured, false))); err != nil {
			return false, err
		}
		sent++
		return sent < count && ctx.Err() == nil, nil
	})
	if err != nil {
		return toStatus(ctx, err)
	}
	return nil
}

type serverFeatures struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (serverFeatures) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	m := func(method string, features ...string) *serverfeatures.SupportedMethod {
		return &serverfeatures.SupportedMethod{MethodName: method, ServiceName: "event_store.client.streams.streams", Features: features}
	}
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: ServerVersion,
		Methods: []*serverfeatures.SupportedMethod{
			m("read", "all", "stream", "filter"),
			m("append"),
			m("delete"),
			m("tombstone"),
		},
	}, nil
}
