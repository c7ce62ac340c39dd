package estest

import (
	"os"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
)

// URLEnv names an external store (e.g. a real KurrentDB) for tests to use
// instead of starting the embedded one.
const URLEnv = "FANFARE_TEST_EVENTSTORE_URL"

// Connect returns a client for the test: to $FANFARE_TEST_EVENTSTORE_URL when
// set, else to an embedded store started in a temporary directory.
func Connect(t testing.TB) *esdb.Client {
	t.Helper()
	c, _ := ConnectURL(t)
	return c
}

// ConnectURL is Connect that also gives the store's connection string, for
// code that opens its own connections (eventstore.ScanAll).
func ConnectURL(t testing.TB) (*esdb.Client, string) {
	t.Helper()
	url := os.Getenv(URLEnv)
	if url == "" {
		srv, err := eventstored.Start(eventstored.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		url = srv.URL()
	}
	c, err := eventstore.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, url
}
