// Package kafkatest gives tests an embedded Kafka broker and the kcat
// binary. Any test that needs Kafka starts its own broker with NewBroker.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/kafka"
)

// KcatInstallHint is what to do when kcat is missing.
const KcatInstallHint = "kcat is not installed: run `apt-get install -y kcat` (the repo's test task installs it)"

// ErrNoKcat is returned by Kcat when the binary is not on PATH.
var ErrNoKcat = errors.New(KcatInstallHint)

// NewBroker starts an in-memory embedded broker on a free loopback port and
// closes it when the test ends.
func NewBroker(t testing.TB) *kafka.Broker {
	t.Helper()
	return NewBrokerWith(t, kafka.BrokerConfig{})
}

// NewBrokerWith is NewBroker with a config; an empty Addr means a free
// loopback port.
func NewBrokerWith(t testing.TB, cfg kafka.BrokerConfig) *kafka.Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	b, err := kafka.StartBroker(cfg)
	if err != nil {
		t.Fatalf("start embedded kafka broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Kcat returns the path of the kcat binary (Debian's package also ships it as
// kafkacat), or ErrNoKcat.
func Kcat() (string, error) {
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoKcat
}

// RequireKcat returns the kcat path and fails the test (it never skips) when
// kcat is missing.
func RequireKcat(t testing.TB) string {
	t.Helper()
	p, err := Kcat()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RunKcat runs kcat with args and returns its standard output; a non-zero
// exit fails with kcat's standard error in the message.
func RunKcat(ctx context.Context, args ...string) ([]byte, error) {
	p, err := Kcat()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("kcat %v: %w: %s", args, err, ee.Stderr)
		}
		return out, fmt.Errorf("kcat %v: %w", args, err)
	}
	return out, nil
}
