// Package eventstore is how Fanfare's services use the event store: one
// client constructor, an aggregate repository with optimistic concurrency,
// deterministic reaction ids and snapshots, and a checkpointed $all
// subscription. It talks only through the official KurrentDB client, so the
// same code runs against the embedded store and a real KurrentDB cluster.
package eventstore

import (
	"fmt"
	"log/slog"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// discoverAttempts × the 100 ms discovery interval ≈ one minute of retrying.
const discoverAttempts = 600

// Connect opens a client for an esdb:// connection string. The client's own
// log lines go to slog at debug level: it logs every expected refusal (a
// wrong expected version) as an error, and every error it logs also reaches
// the caller as a returned error.
func Connect(url string) (*esdb.Client, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("event store url %q: %w", url, err)
	}
	// The client gives up for good once one discovery round fails (10
	// attempts, 100 ms apart by default): its connection goroutine exits,
	// later calls fail with "connection closed", and calls that were in
	// flight block forever asking it to reconnect. A store restart takes
	// longer than a second, so keep discovering for about a minute.
	if cfg.MaxDiscoverAttempts < discoverAttempts {
		cfg.MaxDiscoverAttempts = discoverAttempts
	}
	cfg.Logger = func(level esdb.LogLevel, format string, args ...interface{}) {
		slog.Debug("eventstore client: "+fmt.Sprintf(format, args...), "level", level)
	}
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("event store client for %q: %w", url, err)
	}
	return c, nil
}
