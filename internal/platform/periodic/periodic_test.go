package periodic_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/periodic"
)

func TestRunCallsUntilFailureOrStop(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	err := periodic.Run(context.Background(), time.Millisecond, func(context.Context) error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("Run returned %v after %d calls, want boom after 3", err, calls)
	}

	// Stopped: nil, even when the call in flight fails because of it.
	ctx, cancel := context.WithCancel(context.Background())
	err = periodic.Run(ctx, time.Millisecond, func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
}
