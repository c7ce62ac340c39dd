package waiters_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/waiters"
)

// A waiter wakes on Notify and checks again; it gives up at its bound
// without an error, and an outcome recorded before the wait is found at
// once.
func TestWait(t *testing.T) {
	var w waiters.Set
	var done atomic.Bool
	go func() {
		time.Sleep(20 * time.Millisecond)
		done.Store(true)
		w.Notify("a")
	}()
	start := time.Now()
	if err := w.Wait(context.Background(), "a", 10*time.Second, func() (bool, error) { return done.Load(), nil }); err != nil || !done.Load() {
		t.Fatalf("wait: %v, done %v", err, done.Load())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the notification did not wake the waiter")
	}
	checks := 0
	if err := w.Wait(context.Background(), "b", 30*time.Millisecond, func() (bool, error) { checks++; return false, nil }); err != nil || checks != 1 {
		t.Fatalf("timed-out wait: %v after %d checks", err, checks)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Wait(ctx, "c", time.Second, func() (bool, error) { return false, nil }); err != context.Canceled {
		t.Fatalf("cancelled wait: %v", err)
	}
}
