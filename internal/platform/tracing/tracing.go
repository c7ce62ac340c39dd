// Package tracing carries OpenTelemetry trace context through Fanfare, once
// for every service: a Connect RPC starts a server span, an event appended
// inside a span records it in its envelope (events.Envelope.Traceparent),
// the forwarder copies it to the Kafka message, and the consumer of the
// message continues the trace. So one trace follows a request from the API
// through every saga and service that reacts to it.
//
// Spans go to the global TracerProvider (otel.SetTracerProvider). Until one
// is set, spans are no-ops and nothing starts a trace, so no trace context
// is written (one begun upstream still passes through) and tracing costs
// next to nothing.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceparentKey is the W3C name of the trace context Fanfare carries, in
// HTTP headers and Kafka message metadata alike.
const TraceparentKey = "traceparent"

// Scope names Fanfare's instrumentation.
const Scope = "github.com/fanfare/fanfare"

func init() {
	// Libraries that propagate through the global propagator (HTTP and RPC
	// instrumentation) speak the same W3C format as the envelope.
	otel.SetTextMapPropagator(propagation.TraceContext{})
}

// tracer delegates to whatever provider is set globally, even one set
// after this package was initialized.
var tracer = otel.Tracer(Scope)

// Start starts a span with Fanfare's tracer on the global provider.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return tracer.Start(ctx, name, opts...)
}

// Traceparent is the W3C traceparent of sc, "" when sc is not valid. The
// tracestate is not carried: Fanfare records only where a trace goes.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return "" // the usual case without a provider: nothing to allocate
	}
	var c carrier
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), &c)
	return c.traceparent
}

// Parse is the remote span context a traceparent names; not valid when
// traceparent is empty or malformed.
func Parse(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), &carrier{traceparent: traceparent}))
}

// WithRemote returns ctx with the span traceparent names as the parent of
// the spans started from it: how a consumer continues its producer's
// trace. It returns ctx itself when traceparent is empty or malformed.
func WithRemote(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, &carrier{traceparent: traceparent})
}

// carrier holds the one field Fanfare stores.
type carrier struct{ traceparent string }

func (c *carrier) Get(key string) string {
	if key == TraceparentKey {
		return c.traceparent
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	if key == TraceparentKey {
		c.traceparent = value
	}
}

func (c *carrier) Keys() []string { return []string{TraceparentKey} }
