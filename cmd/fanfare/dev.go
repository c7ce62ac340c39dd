package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/gateway"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/metrics"
	"github.com/fanfare/fanfare/sagas/crowdfund"
	referralsaga "github.com/fanfare/fanfare/sagas/referral"
	"github.com/fanfare/fanfare/sagas/royalty"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/chains"
	"github.com/fanfare/fanfare/services/escrow"
	"github.com/fanfare/fanfare/services/plays"
	"github.com/fanfare/fanfare/services/reports"
	"github.com/fanfare/fanfare/services/songs"
	"github.com/fanfare/fanfare/services/tipping"
)

// readiness is one part's answer to "can you serve?".
type readiness struct {
	name  string
	check func(ctx context.Context) error
}

func runDev(ctx context.Context, args []string) error {
	fs := flags("dev", "dev [--data-dir .fanfare] [--http 127.0.0.1:8080] [--eventstore-listen 127.0.0.1:2113 | --eventstore-url esdb://…] [--kafka-listen 127.0.0.1:9092 | --kafka-brokers host:port,…] [--kratos-listen 127.0.0.1:4433 --kratos-admin-listen 127.0.0.1:4434 | --kratos-url URL] [gateway flags]")
	dataDir := fs.String("data-dir", ".fanfare", "directory for all embedded data; kept across restarts")
	httpAddr := fs.String("http", "127.0.0.1:8080", "the gateway's public address: every API, the web pages, /healthz and /readyz")
	esListen := fs.String("eventstore-listen", eventstored.DefaultListen, "address of the embedded event store")
	esURL := fs.String("eventstore-url", "", "use this event store (esdb://…) instead of the embedded one")
	kafkaListen := fs.String("kafka-listen", kafka.DefaultBrokerAddr, "address of the embedded Kafka broker")
	kafkaBrokers := fs.String("kafka-brokers", "", "use these Kafka brokers (comma-separated host:port) instead of the embedded one")
	partitions := fs.Int("partitions", int(kafka.DefaultPartitions), "partition count of the topics created at start-up")
	kratosListen := fs.String("kratos-listen", "127.0.0.1:4433", "public address of the Kratos started as a child process (port 0: any free port)")
	kratosAdminListen := fs.String("kratos-admin-listen", "127.0.0.1:4434", "admin address of that Kratos (port 0: any free port)")
	kratosURL := fs.String("kratos-url", "", "use this Kratos public URL instead of starting one (its UI URLs must point at this gateway)")
	gw := gatewayFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}

	var closers []io.Closer
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
	}()

	url := *esURL
	if url == "" {
		srv, err := eventstored.Start(eventstored.Config{DataDir: filepath.Join(*dataDir, "eventstore"), Listen: *esListen})
		if err != nil {
			return err
		}
		closers = append(closers, srv)
		url = srv.URL()
		slog.Info("event store listening", "addr", srv.Addr(), "url", url, "data_dir", filepath.Join(*dataDir, "eventstore"))
	}
	es, err := eventstore.Connect(url)
	if err != nil {
		return err
	}
	closers = append(closers, closerFunc(es.Close))

	var brokers []string
	if *kafkaBrokers == "" {
		b, err := startBroker(ctx, filepath.Join(*dataDir, "kafka"), *kafkaListen, int32(*partitions))
		if err != nil {
			return err
		}
		closers = append(closers, b)
		brokers = b.Brokers()
	} else {
		brokers = strings.Split(*kafkaBrokers, ",")
		// The same admin step as for the embedded broker.
		if err := kafka.EnsureTopics(ctx, brokers, allTopics(), int32(*partitions)); err != nil {
			return err
		}
		slog.Info("using kafka brokers", "brokers", brokers)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		return err
	}
	closers = append(closers, pub)

	var fwdCaughtUp atomic.Bool
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		err := forwarder.Run(ctx, forwarder.Config{Store: eventstore.NewStore(es), Publisher: pub,
			OnCaughtUp: func() { fwdCaughtUp.Store(true) }})
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("forwarder stopped: %w", err))
		}
	}()
	slog.Info("forwarder running", "from", "$all", "to", "fanfare.<service>.v1")

	// The signing key of internal identities: the gateway signs with it;
	// `fanfare token` does so for curl and tests.
	key, err := identity.LoadOrCreateKey(filepath.Join(*dataDir, "identity.key"))
	if err != nil {
		return err
	}
	parts, err := devServices(ctx, partDeps{dataDir: *dataDir, store: eventstore.NewStore(es), esURL: url, brokers: brokers,
		idKey: key.Public().(ed25519.PublicKey), instance: "dev"})
	if err != nil {
		return err
	}
	partsDone := make(chan struct{})
	go func() {
		defer close(partsDone)
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Run(ctx); err != nil && ctx.Err() == nil {
					cancel(fmt.Errorf("%s stopped: %w", p.name, err))
				}
			}()
		}
		wg.Wait()
	}()

	checks := []readiness{
		{"eventstore", func(ctx context.Context) error { return pingEventStore(ctx, es) }},
		{"kafka", func(ctx context.Context) error { return kafka.Ping(ctx, brokers) }},
		{"forwarder", func(context.Context) error {
			if !fwdCaughtUp.Load() {
				return errors.New("catching up")
			}
			return nil
		}},
	}

	lis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *httpAddr, err)
	}
	publicURL := gw.publicURL(lis.Addr().String())
	kratosPublic := *kratosURL
	if kratosPublic == "" {
		ks, err := kratos.Start(ctx, kratos.Config{DataDir: filepath.Join(*dataDir, "kratos"), PublicAddr: *kratosListen,
			AdminAddr: *kratosAdminListen, Env: kratos.UIEnv(publicURL)})
		if err != nil {
			return err
		}
		closers = append(closers, ks)
		kratosPublic = ks.PublicURL()
		slog.Info("kratos running", "public", ks.PublicURL(), "admin", ks.AdminURL(), "data_dir", filepath.Join(*dataDir, "kratos"))
	}
	checks = append(checks, readiness{"kratos", func(ctx context.Context) error { return kratos.Ready(ctx, kratosPublic) }})

	mux := healthMux(checks)
	apiPaths := map[string]string{} // part name → mounted path
	var backends []gateway.Backend
	for _, p := range parts {
		if a, ok := p.part.(api); ok {
			path, h := a.Handler()
			backends = append(backends, gateway.Backend{Service: strings.Trim(path, "/"), Handler: h})
			apiPaths[p.name] = path
		}
	}
	g, err := gw.build(backends, kratosPublic, key, publicURL)
	if err != nil {
		return err
	}
	mux.Handle("/", g.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, Protocols: h2c.Server()}
	go hs.Serve(lis)
	slog.Info("gateway listening", "url", publicURL, "healthz", publicURL+"/healthz", "readyz", publicURL+"/readyz", "kratos", kratosPublic)
	for _, p := range parts {
		path, ok := apiPaths[p.name]
		if !ok {
			slog.Info(p.name + " running")
			continue
		}
		slog.Info(p.name+" service listening", "url", publicURL+path, "protocols", "connect, grpc, grpc-web", "through", "gateway")
	}
	slog.Info("fanfare dev is running; stop with Ctrl-C or SIGTERM")

	<-ctx.Done()
	slog.Info("shutting down")
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	err = hs.Shutdown(shutdownCtx)
	<-fwdDone // the forwarder saves its checkpoint before the store closes
	<-partsDone
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// pingEventStore reads one event of $all through the official client: the
// same path every service uses.
func pingEventStore(ctx context.Context, c *esdb.Client) error {
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return err
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func healthMux(checks []readiness) *http.ServeMux {
	mux := http.NewServeMux()
	// Prometheus: consumer lag, ledger batch sizes and commit latency,
	// refusals by reason, and the Go runtime's figures.
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, ""
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				body += fmt.Sprintf("%s: not ready: %v\n", c.name, err)
			} else {
				body += c.name + ": ready\n"
			}
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	return mux
}

// part is a service or saga of the dev process: background work, and a
// Connect API when it implements api.
type part interface {
	Run(ctx context.Context) error
}

// api is a part's Connect handler and the path to mount it on.
type api interface {
	Handler() (string, http.Handler)
}

type namedService struct {
	name string
	part
}

// partDeps is what a service or saga is built on.
type partDeps struct {
	dataDir string
	store   *eventstore.Store
	esURL   string
	brokers []string
	idKey   ed25519.PublicKey
	// instance names this process among the consumer group's members.
	instance string
}

// partSpec is one service or saga: its name for `fanfare serve`, its name
// in logs, and how it is built.
type partSpec struct {
	name, label string
	build       func(ctx context.Context, d partDeps) (part, error)
}

// key loads (creating on first start) a service's signing key kept in the
// data directory.
func (d partDeps) key(file string) (ed25519.PrivateKey, error) {
	return identity.LoadOrCreateKey(filepath.Join(d.dataDir, file))
}

// partSpecs are every service and saga, in start order. Each service's own
// signing key lives in the data directory beside the identity key.
var partSpecs = []partSpec{
	{"accounts", "accounts", func(ctx context.Context, d partDeps) (part, error) {
		return accounts.New(ctx, accounts.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey, ConsumerInstanceID: "accounts-" + d.instance})
	}},
	{"songs", "songs", func(ctx context.Context, d partDeps) (part, error) {
		k, err := d.key("registrar.key")
		if err != nil {
			return nil, err
		}
		return songs.New(ctx, songs.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey, SigningKey: k})
	}},
	{"chains", "chains", func(ctx context.Context, d partDeps) (part, error) {
		k, err := d.key("chains.key")
		if err != nil {
			return nil, err
		}
		return chains.New(chains.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey, SigningKey: k})
	}},
	{"plays", "plays", func(ctx context.Context, d partDeps) (part, error) {
		return plays.New(ctx, plays.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey})
	}},
	{"royalty", "royalty saga", func(ctx context.Context, d partDeps) (part, error) {
		return royalty.New(ctx, royalty.Config{Store: d.store, Brokers: d.brokers})
	}},
	{"tipping", "tipping", func(ctx context.Context, d partDeps) (part, error) {
		return tipping.New(ctx, tipping.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey})
	}},
	{"referral", "referral saga", func(ctx context.Context, d partDeps) (part, error) {
		return referralsaga.New(referralsaga.Config{Store: d.store, Brokers: d.brokers})
	}},
	{"escrow", "escrow", func(ctx context.Context, d partDeps) (part, error) {
		return escrow.New(ctx, escrow.Config{Store: d.store, Brokers: d.brokers, IdentityKey: d.idKey})
	}},
	{"crowdfund", "crowdfund saga", func(ctx context.Context, d partDeps) (part, error) {
		return crowdfund.New(crowdfund.Config{Store: d.store, Brokers: d.brokers})
	}},
	{"reports", "reports", func(ctx context.Context, d partDeps) (part, error) {
		return reports.New(ctx, reports.Config{Store: d.store, EventStoreURL: d.esURL, Brokers: d.brokers, IdentityKey: d.idKey})
	}},
}

// devServices builds every service and saga on the shared store and brokers.
func devServices(ctx context.Context, d partDeps) ([]namedService, error) {
	var out []namedService
	for _, s := range partSpecs {
		p, err := s.build(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.label, err)
		}
		out = append(out, namedService{s.label, p})
	}
	return out, nil
}
