// Package e2e runs Fanfare as separate processes (internal/cluster) and
// drives the end-to-end scenario (tests/e2e/scenario) through the gateway:
// calm, under chaos, and with scaled-out consumers.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/cluster"
)

// binary is the fanfare binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	// FANFARE_E2E_BINARY runs a fanfare binary built elsewhere.
	if binary = os.Getenv("FANFARE_E2E_BINARY"); binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "fanfare-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fanfare")
	build := exec.Command("go", "build", "-o", binary, "github.com/fanfare/fanfare/cmd/fanfare")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fanfare:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startCluster starts every part as its own process (or all in one `fanfare
// dev` with inProcess), stopped at the end of the test. On failure the logs
// stay in the test's directory, named in the output.
func startCluster(t *testing.T, ctx context.Context, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	cfg.Binary = binary
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Log = t.Logf
	cfg.Env = append(cfg.Env, "FANFARE_LOG_FORMAT=text")
	start := time.Now()
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster of %d processes ready in %s (logs in %s)", len(c.Procs()), time.Since(start).Round(time.Millisecond), filepath.Join(cfg.Dir, "logs"))
	t.Cleanup(func() {
		if err := c.Exited(); err != nil {
			t.Errorf("a part exited on its own: %v", err)
		}
		c.Close()
	})
	return c
}
