// Package kratostest starts a real Kratos for tests and signs identities up
// and in through its native flows.
package kratostest

import (
	"context"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/kratos"
)

// StartTimeout bounds [Start]: the first run builds the Kratos binary,
// which takes several minutes (run such tests with -timeout 15m).
const StartTimeout = 14 * time.Minute

// Start builds Kratos if needed (see [kratos.Binary]) and starts it on
// free loopback ports with a SQLite database in a temporary directory;
// env adds configuration overrides ([kratos.Config.Env]). Kratos is
// stopped when the test ends. Any failure is fatal to the test.
func Start(t testing.TB, env ...string) *kratos.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	srv, err := kratos.Start(ctx, kratos.Config{
		DataDir:    t.TempDir(),
		PublicAddr: "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		Env:        env,
	})
	if err != nil {
		t.Fatalf("start kratos: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close kratos: %v", err)
		}
	})
	return srv
}

// Register registers an identity with email, display name and password
// through the native registration flow ([kratos.RegisterNative]) and
// returns its session token and identity id. Failure is fatal.
func Register(t testing.TB, ctx context.Context, publicURL, email, displayName, password string) (sessionToken, identityID string) {
	t.Helper()
	sessionToken, identityID, err := kratos.RegisterNative(ctx, publicURL, email, displayName, password)
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return sessionToken, identityID
}

// Login logs in through the native login flow ([kratos.LoginNative]) and
// returns the session token. Failure is fatal.
func Login(t testing.TB, ctx context.Context, publicURL, email, password string) (sessionToken string) {
	t.Helper()
	sessionToken, err := kratos.LoginNative(ctx, publicURL, email, password)
	if err != nil {
		t.Fatalf("log in %s: %v", email, err)
	}
	return sessionToken
}
