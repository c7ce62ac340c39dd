// Package servicetest starts a service the way fanfare dev does (its Run
// loop and its Connect handler on an HTTP server, the store's events
// forwarded to Kafka) for component tests, and holds the small helpers those
// tests share.
package servicetest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// Service is what every Fanfare service offers.
type Service interface {
	Handler() (string, http.Handler)
	Run(ctx context.Context) error
}

// Serve runs svc until stop (or the test's end) and returns its URL. stop
// shuts it down, fails the test if Run failed, and may be called twice.
func Serve(t testing.TB, svc Service) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	mux := http.NewServeMux()
	path, h := svc.Handler()
	mux.Handle(path, h)
	// h2c as well as HTTP/1.1, like every Fanfare port: gRPC callers (the
	// gateway forwarding gRPC) need HTTP/2.
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = h2c.Server()
	srv.Start()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with %v", err)
		}
	}
	t.Cleanup(stop)
	return srv.URL, stop
}

// Ctx is a context for one call of a test: canceled at the test's end and
// after a minute at most.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// Code is the Connect code of err (0 when err is not a Connect error).
func Code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

// Bus starts what carries a store's events to Kafka in fanfare dev: an
// embedded broker and the forwarder following the store's $all (through its
// own publisher), both stopped at the test's end. It returns the brokers.
func Bus(t testing.TB, store *eventstore.Store) []string {
	t.Helper()
	broker := kafkatest.NewBroker(t)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = forwarder.Run(ctx, forwarder.Config{Store: store, Publisher: pub})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = pub.Close()
	})
	return broker.Brokers()
}

// Clock is an injectable clock a test moves by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Eventually retries check until it passes, for 30 s at most.
func Eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
