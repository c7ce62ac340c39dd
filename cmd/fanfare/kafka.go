package main

import (
	"context"
	"log/slog"

	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/kafka"
)

// allTopics are the topics Fanfare creates at start-up: one per producing
// service, plus the poison queue.
func allTopics() []string { return append(forwarder.Topics(), kafka.PoisonTopic) }

func runKafka(ctx context.Context, args []string) error {
	fs := flags("kafka", "kafka --data-dir D [--listen 127.0.0.1:9092] [--partitions 12]")
	dataDir := fs.String("data-dir", "", "directory for the broker's data (required)")
	listen := fs.String("listen", kafka.DefaultBrokerAddr, "address to serve the Kafka protocol on")
	partitions := fs.Int("partitions", int(kafka.DefaultPartitions), "partition count of the topics created at start-up")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := startBroker(ctx, *dataDir, *listen, int32(*partitions))
	if err != nil {
		return err
	}
	<-ctx.Done()
	slog.Info("kafka broker stopping")
	return b.Close()
}

// startBroker starts the embedded broker and creates Fanfare's topics.
func startBroker(ctx context.Context, dataDir, listen string, partitions int32) (*kafka.Broker, error) {
	if dataDir == "" {
		return nil, errRequired("--data-dir")
	}
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: listen, DataDir: dataDir, Partitions: partitions})
	if err != nil {
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, b.Brokers(), allTopics(), partitions); err != nil {
		b.Close()
		return nil, err
	}
	slog.Info("kafka broker listening", "addr", b.Addr(), "data_dir", dataDir, "topics", len(allTopics()), "partitions", partitions)
	return b, nil
}
