package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/gateway"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/metrics"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
)

// serveParts lists what `fanfare serve` runs besides the services and sagas.
var serveParts = []string{"eventstore", "broker", "forwarder", "gateway"}

func serveUsage() error {
	names := append([]string{}, serveParts...)
	for _, s := range partSpecs {
		names = append(names, s.name)
	}
	return fmt.Errorf("usage: fanfare serve <part> [flags]; parts: %s ('fanfare serve <part> -h' for its flags)", strings.Join(names, ", "))
}

// runServe runs one part of Fanfare as its own process (distributed mode).
// Every flag also reads from its FANFARE_* environment variable. A part
// that starts before the event store, the brokers or Kratos waits for them
// with backoff instead of exiting.
func runServe(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return serveUsage()
	}
	name, rest := args[0], args[1:]
	switch name {
	case "eventstore":
		return runEventStore(ctx, rest)
	case "broker":
		return runKafka(ctx, rest)
	}
	var spec *partSpec
	for i := range partSpecs {
		if partSpecs[i].name == name {
			spec = &partSpecs[i]
		}
	}
	if spec == nil && name != "forwarder" && name != "gateway" {
		return fmt.Errorf("unknown part %q: %w", name, serveUsage())
	}

	fs := flags("serve "+name, "serve "+name+" --eventstore-url esdb://… --kafka-brokers host:port,… [--listen 127.0.0.1:8081] [--data-dir D]")
	dataDir := fs.String("data-dir", ".fanfare", "directory holding the keys (identity.key; registrar.key, chains.key for songs and chains)")
	listen := fs.String("listen", "127.0.0.1:0", "address for the part's API (if it has one), /healthz and /readyz")
	esURL := fs.String("eventstore-url", "", "the event store (esdb://…); required")
	brokersFlag := fs.String("kafka-brokers", "", "Kafka brokers, comma-separated host:port; required")
	instance := fs.String("instance", "", "this process's name among its consumer group's members (default: the host name and port)")
	partitions := fs.Int("partitions", int(kafka.DefaultPartitions), "partition count of topics this part creates if they are missing")
	var kratosURL, routes *string
	var gw gatewayOptions
	if name == "gateway" {
		kratosURL = fs.String("kratos-url", "", "the Kratos public API; required")
		routes = fs.String("routes", "", "where each service listens: accounts=http://host:port,songs=…; name a service again for each further instance (calls go round-robin); required")
		gw = gatewayFlags(fs)
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	key, err := identity.LoadOrCreateKey(filepath.Join(*dataDir, "identity.key"))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	var ready atomic.Bool
	mux := healthMux([]readiness{{name, func(context.Context) error {
		if !ready.Load() {
			return errors.New("starting")
		}
		return nil
	}}})
	// A service's port answers while it waits for its dependencies and
	// while it is rebuilt: its API (that of the current build, once there
	// is one) or unavailable, never a 404 for a call that will work soon.
	var current atomic.Pointer[partAPI]
	if spec != nil {
		mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := current.Load()
			switch {
			case a == nil || !ready.Load():
				state := "starting"
				if a != nil {
					state = "recovering"
				}
				connect.NewErrorWriter().Write(w, r, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s is %s; try again", name, state))) //nolint:errcheck // the client sees the error or nothing
			case strings.HasPrefix(r.URL.Path, a.path):
				a.handler.ServeHTTP(w, r)
			default:
				http.NotFound(w, r)
			}
		}))
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, Protocols: h2c.Server()}
	go hs.Serve(lis) //nolint:errcheck // ends with Shutdown
	defer hs.Shutdown(context.Background())
	url := "http://" + lis.Addr().String()
	slog.Info(name+" starting", "url", url)

	if name == "gateway" {
		return serveGateway(ctx, mux, &ready, key, *kratosURL, *routes, gw, url)
	}

	if *esURL == "" || *brokersFlag == "" {
		return errors.New("--eventstore-url and --kafka-brokers are required")
	}
	brokers := strings.Split(*brokersFlag, ",")
	// The client retries discovery for a minute on its own, deaf to the
	// context: wait until a node accepts connections before making it.
	if err := waitFor(ctx, "event store "+*esURL, func(ctx context.Context) error { return dialAny(ctx, esdbHosts(*esURL)) }); err != nil {
		return err
	}
	es, err := eventstore.Connect(*esURL)
	if err != nil {
		return err
	}
	defer es.Close()
	if err := waitFor(ctx, "event store "+*esURL, func(ctx context.Context) error { return pingEventStore(ctx, es) }); err != nil {
		return err
	}
	if err := waitFor(ctx, "kafka "+*brokersFlag, func(ctx context.Context) error {
		if err := kafka.Ping(ctx, brokers); err != nil {
			return err
		}
		return kafka.EnsureTopics(ctx, brokers, allTopics(), int32(*partitions))
	}); err != nil {
		return err
	}
	store := eventstore.NewStore(es)

	// run builds the part and runs it until it stops.
	var run func(ctx context.Context) error
	if name == "forwarder" {
		pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers})
		if err != nil {
			return err
		}
		defer pub.Close()
		run = func(ctx context.Context) error {
			slog.Info("forwarder running", "from", "$all", "to", "fanfare.<service>.v1")
			return forwarder.Run(ctx, forwarder.Config{Store: store, Publisher: pub, OnCaughtUp: func() { ready.Store(true) }})
		}
	} else {
		if *instance == "" {
			*instance = lis.Addr().String()
		}
		deps := partDeps{dataDir: *dataDir, store: store, esURL: *esURL, brokers: brokers,
			idKey: key.Public().(ed25519.PublicKey), instance: *instance}
		run = func(ctx context.Context) error {
			// What a build starts ends with it, before a rebuild.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			p, err := spec.build(ctx, deps)
			if err != nil {
				return err
			}
			if a, ok := p.(api); ok {
				path, h := a.Handler()
				current.Store(&partAPI{path, h})
				slog.Info(spec.label+" service listening", "url", url+path, "protocols", "connect, grpc, grpc-web")
			}
			ready.Store(true)
			slog.Info(spec.label + " running")
			return p.Run(ctx)
		}
	}

	// A part that stops on an error (the event store restarted under it,
	// say) is rebuilt in this process once its dependencies answer again,
	// recovering its state as at a start, instead of taking the process
	// down: /readyz says not ready meanwhile, and the API answers
	// unavailable.
	delay := 200 * time.Millisecond
	for {
		started := time.Now()
		err := run(ctx)
		ready.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			delay = 200 * time.Millisecond // it ran well for a while
		}
		metrics.PartRestarts.WithLabelValues(name).Inc()
		slog.Warn(name+" stopped; rebuilding it once its dependencies answer", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
		if err := waitFor(ctx, "event store "+*esURL, func(ctx context.Context) error { return pingEventStore(ctx, es) }); err != nil {
			return nil // stopped while waiting
		}
	}
}

// partAPI is the Connect API of a part's current build and its path.
type partAPI struct {
	path    string
	handler http.Handler
}

// routeNames are the services' short names in --routes (the parts with a
// Connect API; cluster.Services lists the same, checked by a test).
var routeNames = map[string]string{"accounts": accountsv1connect.AccountsServiceName, "songs": songsv1connect.SongsServiceName,
	"chains": chainsv1connect.ChainsServiceName, "plays": playsv1connect.PlaysServiceName, "tipping": tippingv1connect.TippingServiceName,
	"escrow": escrowv1connect.EscrowServiceName, "reports": reportsv1connect.ReportsServiceName}

// serveGateway runs the gateway in front of services at the given URLs.
func serveGateway(ctx context.Context, mux *http.ServeMux, ready *atomic.Bool, key ed25519.PrivateKey, kratosURL, routes string, gw gatewayOptions, url string) error {
	if kratosURL == "" || routes == "" {
		return errors.New("--kratos-url and --routes are required")
	}
	// A service named more than once has several instances: the gateway
	// spreads calls over them.
	var backends []gateway.Backend
	for _, r := range strings.Split(routes, ",") {
		svc, u, ok := strings.Cut(strings.TrimSpace(r), "=")
		if full, short := routeNames[svc]; short {
			svc = full
		}
		if !ok || svc == "" || u == "" {
			return fmt.Errorf("--routes: %q is not service=url", r)
		}
		if i := slices.IndexFunc(backends, func(b gateway.Backend) bool { return b.Service == svc }); i >= 0 {
			backends[i].URLs = append(backends[i].URLs, u)
			continue
		}
		backends = append(backends, gateway.Backend{Service: svc, URLs: []string{u}})
	}
	if err := waitFor(ctx, "kratos "+kratosURL, func(ctx context.Context) error { return kratos.Ready(ctx, kratosURL) }); err != nil {
		return err
	}
	g, err := gw.build(backends, kratosURL, key, gw.publicURL(strings.TrimPrefix(url, "http://")))
	if err != nil {
		return err
	}
	mux.Handle("/", g.Handler())
	ready.Store(true)
	slog.Info("gateway listening", "url", url, "services", len(backends), "kratos", kratosURL)
	<-ctx.Done()
	return nil
}

// waitFor retries check with exponential backoff (0.2 s doubling to 5 s)
// until it succeeds or ctx ends, logging what it waits for.
func waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				slog.Info("available after waiting", "what", what, "attempts", attempt)
			}
			return nil
		}
		slog.Info("waiting for a dependency", "what", what, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped while waiting for %s: %w", what, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// esdbHosts are the host:port pairs of an esdb:// connection string.
func esdbHosts(url string) []string {
	_, rest, _ := strings.Cut(url, "://")
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "/")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:] // user:password@
	}
	return strings.Split(rest, ",")
}

// dialAny succeeds once one of hosts accepts a TCP connection.
func dialAny(ctx context.Context, hosts []string) error {
	var d net.Dialer
	var err error
	for _, h := range hosts {
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", h); err == nil {
			c.Close()
			return nil
		}
	}
	return err
}
