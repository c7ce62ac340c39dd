package kafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultBrokerAddr is where the embedded broker listens unless told otherwise.
const DefaultBrokerAddr = "127.0.0.1:9092"

// BrokerConfig configures the embedded Kafka-protocol broker.
type BrokerConfig struct {
	// Addr is the host:port to listen on; DefaultBrokerAddr when empty. Port
	// 0 picks a free port (see Broker.Addr). The host is also what the broker
	// advertises to clients, so it must be reachable by them.
	Addr string

	// DataDir persists topics, records, group offsets and producer state.
	// Empty keeps everything in memory (tests). A restart on the same
	// DataDir finds everything that was acknowledged before Close.
	DataDir string

	// NoSync turns off the fsync of every produced batch. The default syncs,
	// because the forwarder advances its event store checkpoint once a
	// publish is acknowledged: an acknowledged record lost in a crash would
	// never be forwarded again.
	NoSync bool

	// Partitions is used for topics created with the broker default (-1)
	// partition count; DefaultPartitions when zero.
	Partitions int32

	Logger watermill.LoggerAdapter
}

// Broker is the embedded single-node Kafka-protocol broker (franz-go kfake).
// Any Kafka client, kcat included, can talk to it over TCP.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// StartBroker starts the embedded broker and returns once it accepts
// connections.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultBrokerAddr
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("kafka: broker address %q: bad port", addr)
	}
	partitions := cfg.Partitions
	if partitions <= 0 {
		partitions = DefaultPartitions
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1; listen where we were told instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.ClusterID("fanfare"),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.WithLogger(kfakeLogger{orNop(cfg.Logger)}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if !cfg.NoSync {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker on %s: %w", addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("kafka: embedded broker listens on %v, want one address", addrs)
	}
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the host:port the broker listens on (the real port when started
// with port 0).
func (b *Broker) Addr() string { return b.addr }

// Brokers is Addr as a seed broker list, ready for the client configs.
func (b *Broker) Brokers() []string { return []string{b.addr} }

// Close stops the broker; with a DataDir it first writes its state so a
// restart resumes where it stopped. Connected clients see the connection drop
// and reconnect once a broker listens on the address again.
func (b *Broker) Close() error {
	b.cluster.Close()
	return nil
}
