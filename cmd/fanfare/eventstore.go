package main

import (
	"context"
	"log/slog"

	"github.com/fanfare/fanfare/deploy/eventstored"
)

func runEventStore(ctx context.Context, args []string) error {
	fs := flags("eventstore", "eventstore --data-dir D [--listen 127.0.0.1:2113]")
	dataDir := fs.String("data-dir", "", "directory for the event store's data (required)")
	listen := fs.String("listen", eventstored.DefaultListen, "address to serve the KurrentDB gRPC protocol on")
	maxAppend := fs.Int("max-append-size", eventstored.DefaultMaxAppendSize, "largest append accepted, in bytes of data and metadata")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	srv, err := eventstored.Start(eventstored.Config{DataDir: *dataDir, Listen: *listen, MaxAppendSize: *maxAppend})
	if err != nil {
		return err
	}
	slog.Info("event store listening", "addr", srv.Addr(), "url", srv.URL(), "data_dir", *dataDir)
	<-ctx.Done()
	slog.Info("event store stopping")
	return srv.Close()
}
