package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/tracing"
	"go.opentelemetry.io/otel"
)

// TestExportSendsSpansOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set,
// Export installs a provider whose spans reach that collector (an HTTP
// server standing in for one) by the time shutdown returns, with the
// process's service name; without it, nothing is installed.
func TestExportSendsSpansOverOTLP(t *testing.T) {
	ctx := context.Background()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	before := otel.GetTracerProvider()
	stop, err := tracing.Export(ctx, "fanfare-test")
	if err != nil || stop(ctx) != nil || otel.GetTracerProvider() != before {
		t.Fatalf("without an endpoint Export changed the provider or failed: %v", err)
	}

	var mu sync.Mutex
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			bodies = append(bodies, b)
		}
		mu.Unlock()
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	stop, err = tracing.Export(ctx, "fanfare-accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer otel.SetTracerProvider(before)
	// The provider Export installed (this package's own tracer delegates
	// to the first provider ever set: TestMain's recorder here).
	_, span := otel.GetTracerProvider().Tracer(tracing.Scope).Start(ctx, "ledger commit")
	span.End()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(bodies, nil)
	for _, want := range []string{"ledger commit", "fanfare-accounts"} {
		if !bytes.Contains(all, []byte(want)) {
			t.Fatalf("the collector got %d requests without %q", len(bodies), want)
		}
	}
}
