// Package apperr maps error kinds to Connect codes, once for every service.
// Domain errors say what kind of failure they are (KindName); the
// interceptor turns that into the wire code, so handlers never pick codes.
package apperr

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kinds understood by Code.
const (
	InvalidInput     = "invalid_input"
	NotFound         = "not_found"
	Conflict         = "conflict"
	Forbidden        = "forbidden" // the rules refuse it (e.g. insufficient funds)
	PermissionDenied = "permission_denied"
	Unauthenticated  = "unauthenticated"
	Unavailable      = "unavailable"
	Exhausted        = "exhausted" // a per-caller limit is reached
)

// Kinded is an error that knows its kind.
type Kinded interface {
	error
	KindName() string
}

type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string    { return e.err.Error() }
func (e *kindError) Unwrap() error    { return e.err }
func (e *kindError) KindName() string { return e.kind }

// New makes an error of a kind.
func New(kind, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// Wrap gives err a kind.
func Wrap(kind string, err error) error { return &kindError{kind: kind, err: err} }

// Of returns an error of the kind that wraps a package's sentinel with
// detail ("<sentinel>: <detail>"), so callers test it with errors.Is.
func Of(kind string, sentinel error, format string, args ...any) error {
	return Wrap(kind, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

var codes = map[string]connect.Code{
	InvalidInput:     connect.CodeInvalidArgument,
	NotFound:         connect.CodeNotFound,
	Conflict:         connect.CodeAlreadyExists,
	Forbidden:        connect.CodeFailedPrecondition,
	PermissionDenied: connect.CodePermissionDenied,
	Unauthenticated:  connect.CodeUnauthenticated,
	Unavailable:      connect.CodeUnavailable,
	Exhausted:        connect.CodeResourceExhausted,
}

// KindOf is the kind of the first kinded error in err's chain, or "".
func KindOf(err error) string {
	var k Kinded
	if errors.As(err, &k) {
		return k.KindName()
	}
	return ""
}

// Code is the Connect code for err: its kind's, or Internal.
func Code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	var k Kinded
	if errors.As(err, &k) {
		if c, ok := codes[k.KindName()]; ok {
			return c
		}
	}
	if outage(err) {
		return connect.CodeUnavailable
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.CodeDeadlineExceeded
	}
	if errors.Is(err, context.Canceled) {
		return connect.CodeCanceled
	}
	return connect.CodeInternal
}

// Transient reports whether err says to try again later — a dependency
// unreachable or too slow — rather than that the work itself is wrong.
// Consumers wait such failures out instead of giving the message up.
func Transient(err error) bool {
	switch Code(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

// outage reports whether err is a dependency (the event store) being
// unreachable, closing the connection or cancelling the call under the
// service — a caller should try again — rather than a fault of the
// service.
func outage(err error) bool {
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorUnavailable, esdb.ErrorAborted, esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeNotLeader, esdb.ErrorCodeDeadlineExceeded:
			return true
		}
	}
	var ge interface{ GRPCStatus() *status.Status }
	if errors.As(err, &ge) {
		switch ge.GRPCStatus().Code() {
		case grpccodes.Unavailable, grpccodes.Canceled, grpccodes.Aborted:
			return true
		}
	}
	return false
}

// Interceptor turns handler errors, unary or streaming, into Connect
// errors with Code(err) and the error's message.
func Interceptor() connect.Interceptor { return interceptor{} }

type interceptor struct{}

// toConnect is err as a Connect error (nil stays nil).
func toConnect(err error) error {
	var ce *connect.Error
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return connect.NewError(Code(err), err)
}

func (interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, toConnect(err)
		}
		return res, nil
	}
}

func (interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return toConnect(next(ctx, conn))
	}
}

func (interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// CheckRequestID checks a client-supplied idempotency key.
func CheckRequestID(id string) error {
	if id == "" || len(id) > 128 {
		return New(InvalidInput, "request_id is required (1..128 characters)")
	}
	return nil
}
