package eventstored

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// DefaultListen is where the embedded store listens unless told otherwise.
const DefaultListen = "127.0.0.1:2113"

// Config configures a Server.
type Config struct {
	DataDir       string
	Listen        string // host:port; ":0" picks a free port
	MaxAppendSize int    // bytes of data+metadata per append; default 1 MiB
	Now           func() time.Time
}

// Server is a running embedded event store.
type Server struct {
	store *Store
	grpc  *grpc.Server
	lis   net.Listener
	done  chan error
}

// Start opens the store and serves the protocol until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("eventstored: a data directory is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxAppendSize <= 0 {
		cfg.MaxAppendSize = DefaultMaxAppendSize
	}
	store, err := OpenStore(cfg.DataDir, Options{Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("eventstored: listen on %s: %w", cfg.Listen, err)
	}
	gs := grpc.NewServer(
		grpc.ForceServerCodecV2(newFrameCodec()),
		grpc.MaxRecvMsgSize(cfg.MaxAppendSize+(1<<20)),
		// Reads stream many small messages: large windows keep the pipe full.
		grpc.InitialWindowSize(4<<20),
		grpc.InitialConnWindowSize(16<<20),
		grpc.WriteBufferSize(256<<10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	api.RegisterStreamsServer(gs, &streamsServer{store: store, maxAppendSize: cfg.MaxAppendSize})
	serverfeatures.RegisterServerFeaturesServer(gs, serverFeatures{})
	s := &Server{store: store, grpc: gs, lis: lis, done: make(chan error, 1)}
	go func() { s.done <- gs.Serve(lis) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL is the connection string for the official client.
func (s *Server) URL() string { return "esdb://" + s.Addr() + "?tls=false" }

// Store gives in-process access to the storage engine (health checks, tests).
func (s *Server) Store() *Store { return s.store }

// Close stops serving (letting in-flight calls finish for a moment) and
// closes the store.
func (s *Server) Close() error {
	// Live subscriptions never end on their own: close the store first so
	// they return, then stop gracefully with a bound.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(200 * time.Millisecond):
		s.store.Close()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpc.Stop()
		}
	}
	return s.store.Close()
}
