// Package periodic runs a service's clock-driven chores (hold expiry,
// session expiry) the same way everywhere.
package periodic

import (
	"context"
	"time"
)

// Run calls fn every interval until ctx ends, then returns nil. An error
// from fn stops it and is returned, unless ctx has ended (work cut short by
// stopping is not a failure).
func Run(ctx context.Context, interval time.Duration, fn func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}
