package tracing

import (
	"context"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServerInterceptor starts a server span for every RPC a Connect handler
// serves, named after its procedure ("fanfare.plays.v1.PlaysService/
// RecordHeartbeats"), so whatever the handler appends is in that trace.
//
// It is hand-written because otelconnect, which does this, is at a version
// (v0.11, pinned by buf's requirements) built for connect/v2, and the
// services are on connect v1. It follows otelconnect's defaults: the
// caller's trace context is not trusted (the gateway forwards what public
// clients send), so every RPC starts a new trace, linked to the caller's.
func ServerInterceptor() connect.Interceptor { return serverInterceptor{} }

type serverInterceptor struct{}

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

func (serverInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, span := startServer(ctx, req.Spec(), req.Peer(), req.Header())
		res, err := next(ctx, req)
		endServer(span, err)
		return res, err
	}
}

func (serverInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (serverInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, span := startServer(ctx, conn.Spec(), conn.Peer(), conn.RequestHeader())
		err := next(ctx, conn)
		endServer(span, err)
		return err
	}
}

func startServer(ctx context.Context, spec connect.Spec, peer connect.Peer, h http.Header) (context.Context, trace.Span) {
	procedure := strings.TrimPrefix(spec.Procedure, "/")
	var ctxOpts [2]trace.SpanStartOption
	opts := append(ctxOpts[:0], serverKind)
	if remote := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(h))); remote.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote}))
	}
	ctx, span := tracer.Start(ctx, procedure, opts...)
	if span.IsRecording() { // attributes only cost anything when a span is kept
		system := semconv.RPCSystemNameConnectrpc
		if peer.Protocol != connect.ProtocolConnect {
			system = semconv.RPCSystemNameKey.String("grpc")
		}
		span.SetAttributes(system, semconv.RPCMethod(procedure))
	}
	return ctx, span
}

func endServer(span trace.Span, err error) {
	if span.IsRecording() {
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		span.SetAttributes(semconv.RPCResponseStatusCode(code))
		if serverFault(err) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// serverFault is whether err is the server's failure rather than the
// caller's (a refused or invalid request is the RPC working as meant), as
// the OpenTelemetry RPC conventions count server span errors.
func serverFault(err error) bool {
	if err == nil {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeUnimplemented,
		connect.CodeInternal, connect.CodeUnavailable, connect.CodeDataLoss:
		return true
	}
	return false
}
