package bench

import (
	"context"
	"net"
	"net/http"
	"os"

	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/kafka"
)

// stack is the embedded infrastructure a scenario runs on: an event store
// and a broker (both fsync'd) in a temporary directory, with Fanfare's
// topics created and the forwarder running.
type stack struct {
	dir    string
	srv    *eventstored.Server
	broker *kafka.Broker
	store  *eventstore.Store
	pub    *kafka.Publisher
	cancel context.CancelFunc
}

func startStack(ctx context.Context, name string) (*stack, error) {
	dir, err := os.MkdirTemp("", "fanfare-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	st := &stack{dir: dir}
	if st.srv, err = eventstored.Start(eventstored.Config{DataDir: dir + "/eventstore", Listen: "127.0.0.1:0"}); err != nil {
		st.Close()
		return nil, err
	}
	if st.broker, err = kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0", DataDir: dir + "/kafka"}); err != nil {
		st.Close()
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, st.broker.Brokers(), forwarder.Topics(), kafka.DefaultPartitions); err != nil {
		st.Close()
		return nil, err
	}
	client, err := eventstore.Connect(st.srv.URL())
	if err != nil {
		st.Close()
		return nil, err
	}
	st.store = eventstore.NewStore(client)
	if st.pub, err = kafka.NewPublisher(kafka.PublisherConfig{Brokers: st.broker.Brokers()}); err != nil {
		st.Close()
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	st.cancel = cancel
	go forwarder.Run(fctx, forwarder.Config{Store: st.store, Publisher: st.pub})
	return st, nil
}

// Close stops everything and removes the data.
func (st *stack) Close() {
	if st.cancel != nil {
		st.cancel()
	}
	if st.pub != nil {
		st.pub.Close()
	}
	if st.store != nil {
		st.store.Client.Close()
	}
	if st.broker != nil {
		st.broker.Close()
	}
	if st.srv != nil {
		st.srv.Close()
	}
	os.RemoveAll(st.dir)
}

// serve serves a Connect handler on a free local port and returns its URL
// and how to stop it.
func serve(path string, h http.Handler) (string, func(), error) {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(lis)
	return "http://" + lis.Addr().String(), func() { hs.Close() }, nil
}
