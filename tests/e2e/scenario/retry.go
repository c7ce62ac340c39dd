package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// Every call of the driver goes through retry: a failure that a restart
// of some part explains (the gateway, a service, the broker or the event
// store killed and coming back) is retried with backoff and the very same
// request — every money-moving request carries a request id the driver
// chose, so a repeat returns the first outcome and moves nothing — until
// the call's deadline. Anything else fails the run, saying what was asked.

const (
	// callDeadline bounds the retries of one call.
	callDeadline = 3 * time.Minute
	// attemptTimeout bounds one attempt: a part killed mid-call may leave
	// a connection that never answers.
	attemptTimeout = 30 * time.Second
	// waitDeadline bounds waiting for an asynchronous outcome (a tip
	// completed, a campaign settled, rewards minted).
	waitDeadline = 4 * time.Minute
)

type callOptions struct {
	// lagging: NotFound means a read model has not caught up yet (a song
	// registered a moment ago, a campaign just opened).
	lagging bool
	// also are further codes worth a retry for this call.
	also []connect.Code
}

type callOption func(*callOptions)

// lagging retries NotFound too: the thing asked about exists (the driver
// created it), a service's read model just has not seen it yet.
func lagging() callOption { return func(o *callOptions) { o.lagging = true } }

// alsoRetry retries codes too: refusals a read model's lag explains (the
// escrow service, restarted, refusing a release over a balance it has not
// read back yet).
func alsoRetry(codes ...connect.Code) callOption {
	return func(o *callOptions) { o.also = append(o.also, codes...) }
}

// brokenConnection marks what the errors of a connection that a killed
// process broke say, when the client reports them as Unknown or Internal
// (a gRPC response cut before its trailers, an HTTP/2 stream reset).
var brokenConnection = []string{
	"connection reset", "connection refused", "broken pipe", "eof", "unexpected end",
	"use of closed network connection", "server closed", "goaway", "stream error", "http2",
	"transport is closing", "connection closed", "protocol error", "no route to host",
}

// kratosTransient marks Kratos' HTTP errors worth another try: its
// SQLite refuses concurrent writes now and then.
var kratosTransient = []string{"database is locked", "500 internal server error", "502", "503", "504", "timeout"}

// transient reports whether err is worth the same request again: the
// connect codes of a part that is down or restarting, and Unknown or
// Internal errors of a broken connection. A service's own Internal error
// is a bug, never retried: an event store outage must come back as
// Unavailable. Errors that are not connect errors (Kratos' HTTP flows)
// are judged by their text.
func transient(err error, o callOptions) bool {
	if err == nil {
		return false
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		// An attempt's own timeout is as transient here as a connect
		// call's DeadlineExceeded below (Kratos' SQLite stalls at times).
		return errors.Is(err, context.DeadlineExceeded) || hasMark(err.Error(), brokenConnection) || hasMark(err.Error(), kratosTransient)
	}
	if slices.Contains(o.also, ce.Code()) {
		return true
	}
	switch ce.Code() {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeAborted, connect.CodeResourceExhausted:
		return true
	case connect.CodeCanceled:
		// The caller's context is checked first; a cancel from elsewhere
		// is a connection a restart broke.
		return true
	case connect.CodeNotFound:
		return o.lagging
	case connect.CodeUnknown, connect.CodeInternal:
		return hasMark(ce.Message(), brokenConnection)
	}
	return false
}

func hasMark(msg string, marks []string) bool {
	msg = strings.ToLower(msg)
	for _, m := range marks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// retry runs fn until it succeeds, fails for good, or callDeadline passes.
// Each attempt gets its own timeout. what names the call in errors and
// logs.
func (d *driver) retry(ctx context.Context, what string, fn func(context.Context) error, opts ...callOption) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	deadline := time.Now().Add(callDeadline)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				d.logf("%s: succeeded after %d attempts", what, attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if !transient(err, o) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still failing after %s and %d attempts: %w", what, callDeadline, attempt, err)
		}
		d.retries.Add(1)
		d.logf("%s: attempt %d failed, retrying: %v", what, attempt, err)
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// call is retry for one unary RPC: the same message is sent on every
// attempt (same request id, same content).
func call[Req, Res any](ctx context.Context, d *driver, what string, rpc func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), req *Req, opts ...callOption) (*Res, error) {
	var out *Res
	err := d.retry(ctx, what, func(ctx context.Context) error {
		res, err := rpc(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		out = res.Msg
		return nil
	}, opts...)
	return out, err
}

// eventually polls check until it reports done, or waitDeadline passes.
// check returns what it saw (for the error at the deadline); its own
// calls retry transient failures, so an error it returns ends the wait.
func (d *driver) eventually(ctx context.Context, what string, check func(context.Context) (done bool, saw string, err error)) error {
	return d.eventuallyWithin(ctx, what, waitDeadline, check)
}

func (d *driver) eventuallyWithin(ctx context.Context, what string, limit time.Duration, check func(context.Context) (bool, string, error)) error {
	start := time.Now()
	deadline, report := start.Add(limit), start.Add(15*time.Second)
	pause := 200 * time.Millisecond
	for {
		done, saw, err := check(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not within %s; last seen: %s", what, limit, saw)
		}
		if time.Now().After(report) {
			d.logf("still waiting for %s after %s: %s", what, time.Since(start).Round(time.Second), saw)
			report = time.Now().Add(15 * time.Second)
		}
		if err := sleep(ctx, pause); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		pause = min(pause*3/2, 2*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter spreads retries of many callers: d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// parallel runs fn(0…n−1) on at most workers goroutines and returns the
// first error; after one, no new item starts.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// group runs named tasks at once and returns their errors joined.
func group(ctx context.Context, tasks map[string]func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for name, task := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := task(ctx); err != nil {
				mu.Lock()
				if !errors.Is(err, context.Canceled) || len(errs) == 0 {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
