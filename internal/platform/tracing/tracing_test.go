package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/emptypb"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// The provider is global, and the package's tracer delegates to the first
// one set: one recorder serves every test of the binary.
var recorder = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)))
	os.Exit(m.Run())
}

func TestTraceparentRoundTrip(t *testing.T) {
	sc := tracing.Parse(traceparent)
	if !sc.IsValid() || !sc.IsRemote() || !sc.IsSampled() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("Parse(%s) = %+v", traceparent, sc)
	}
	if got := tracing.Traceparent(sc); got != traceparent {
		t.Fatalf("Traceparent = %q; want %q", got, traceparent)
	}
	if !events.ValidTraceparent(tracing.Traceparent(sc)) {
		t.Fatal("the envelope refuses what tracing writes")
	}
	ctx := tracing.WithRemote(context.Background(), traceparent)
	if got := trace.SpanContextFromContext(ctx); !got.Equal(sc) {
		t.Fatalf("WithRemote put %+v in ctx; want %+v", got, sc)
	}
	_, span := tracing.Start(ctx, "child")
	span.End()
	if p := span.(sdktrace.ReadOnlySpan).Parent(); !p.Equal(sc) {
		t.Fatalf("a span started from WithRemote's ctx has parent %+v; want %+v", p, sc)
	}
}

func TestMalformedTraceparentsAreIgnored(t *testing.T) {
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", traceparent[:54]} {
		if sc := tracing.Parse(tp); sc.IsValid() {
			t.Errorf("Parse(%q) = %+v; want invalid", tp, sc)
		}
		ctx := context.Background()
		if got := tracing.WithRemote(ctx, tp); got != ctx && trace.SpanContextFromContext(got).IsValid() {
			t.Errorf("WithRemote(%q) put a span context in ctx", tp)
		}
	}
	if got := tracing.Traceparent(trace.SpanContext{}); got != "" {
		t.Fatalf("Traceparent(zero) = %q", got)
	}
}

// Without a span, which is every call when no provider is set, looking for
// one to record costs no allocation.
func TestNoTraceCostsNoAllocation(t *testing.T) {
	ctx := context.Background()
	envelope := []byte(`{"id":"x","policy_version":1}`)
	allocs := testing.AllocsPerRun(100, func() {
		_ = tracing.Traceparent(trace.SpanContextFromContext(ctx))
		_ = tracing.WithRemote(ctx, "")
		_ = events.TraceparentOf(envelope)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per untraced call; want 0", allocs)
	}
}

// A served RPC is a server span named after its procedure, in a new trace
// linked to the caller's (callers are not trusted to choose the trace),
// and the handler runs inside it. Only server faults mark it failed.
func TestServerInterceptorStartsAServerSpanPerRPC(t *testing.T) {
	const procedure = "/fanfare.test.v1.TestService/Do"
	var fail error
	var inHandler trace.SpanContext
	mux := http.NewServeMux()
	mux.Handle(procedure, connect.NewUnaryHandler(procedure, func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		inHandler = trace.SpanContextFromContext(ctx)
		return connect.NewResponse(&emptypb.Empty{}), fail
	}, connect.WithInterceptors(tracing.ServerInterceptor())))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](srv.Client(), srv.URL+procedure)
	call := func() sdktrace.ReadOnlySpan {
		t.Helper()
		req := connect.NewRequest(&emptypb.Empty{})
		req.Header().Set("traceparent", traceparent)
		_, _ = client.CallUnary(context.Background(), req)
		for _, s := range recorder.Ended() {
			if s.SpanContext().Equal(inHandler) {
				return s
			}
		}
		t.Fatalf("no ended span is the handler's (%+v)", inHandler)
		return nil
	}

	s := call()
	if s.Name() != "fanfare.test.v1.TestService/Do" || s.SpanKind() != trace.SpanKindServer || s.Status().Code != codes.Unset {
		t.Fatalf("span %q kind %v status %v", s.Name(), s.SpanKind(), s.Status())
	}
	caller := tracing.Parse(traceparent)
	if s.Parent().IsValid() || s.SpanContext().TraceID() == caller.TraceID() {
		t.Fatalf("the RPC continued the caller's trace (parent %+v)", s.Parent())
	}
	if len(s.Links()) != 1 || !s.Links()[0].SpanContext.Equal(caller) {
		t.Fatalf("links %+v; want the caller's span", s.Links())
	}

	fail = connect.NewError(connect.CodeNotFound, errors.New("no such thing"))
	if s := call(); s.Status().Code != codes.Unset {
		t.Fatalf("a caller's mistake marked the span %v", s.Status())
	}
	fail = connect.NewError(connect.CodeInternal, errors.New("broken"))
	if s := call(); s.Status().Code != codes.Error {
		t.Fatalf("a server fault left the span %v", s.Status())
	}
}
