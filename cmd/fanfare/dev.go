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
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kratos"
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
	if err := fs.Parse(args); err != nil {
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
	parts, err := devServices(ctx, *dataDir, eventstore.NewStore(es), url, brokers, key.Public().(ed25519.PublicKey))
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
	// h2c: gRPC clients speak HTTP/2 without TLS on this port.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, Protocols: protocols}
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

// devServices builds every service on the shared store and brokers. Each
// service's own signing key lives in the data directory beside the
// identity key, created on first start.
func devServices(ctx context.Context, dataDir string, store *eventstore.Store, esURL string, brokers []string, idKey ed25519.PublicKey) ([]namedService, error) {
	acc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers, IdentityKey: idKey, ConsumerInstanceID: "accounts-dev"})
	if err != nil {
		return nil, err
	}
	registrarKey, err := identity.LoadOrCreateKey(filepath.Join(dataDir, "registrar.key"))
	if err != nil {
		return nil, err
	}
	reg, err := songs.New(ctx, songs.Config{Store: store, Brokers: brokers, IdentityKey: idKey, SigningKey: registrarKey})
	if err != nil {
		return nil, err
	}
	chainsKey, err := identity.LoadOrCreateKey(filepath.Join(dataDir, "chains.key"))
	if err != nil {
		return nil, err
	}
	ch, err := chains.New(chains.Config{Store: store, Brokers: brokers, IdentityKey: idKey, SigningKey: chainsKey})
	if err != nil {
		return nil, err
	}
	pl, err := plays.New(ctx, plays.Config{Store: store, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		return nil, err
	}
	roy, err := royalty.New(ctx, royalty.Config{Store: store, Brokers: brokers})
	if err != nil {
		return nil, err
	}
	tip, err := tipping.New(ctx, tipping.Config{Store: store, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		return nil, err
	}
	ref, err := referralsaga.New(referralsaga.Config{Store: store, Brokers: brokers})
	if err != nil {
		return nil, err
	}
	esc, err := escrow.New(ctx, escrow.Config{Store: store, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		return nil, err
	}
	cf, err := crowdfund.New(crowdfund.Config{Store: store, Brokers: brokers})
	if err != nil {
		return nil, err
	}
	rep, err := reports.New(ctx, reports.Config{Store: store, EventStoreURL: esURL, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		return nil, err
	}
	return []namedService{{"accounts", acc}, {"songs", reg}, {"chains", ch}, {"plays", pl}, {"royalty saga", roy},
		{"tipping", tip}, {"referral saga", ref}, {"escrow", esc}, {"crowdfund saga", cf}, {"reports", rep}}, nil
}
