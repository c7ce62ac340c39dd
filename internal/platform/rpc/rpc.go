// Package rpc is what every service's Connect handler runs, written once.
package rpc

import (
	"crypto/ed25519"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/tracing"
)

// HandlerOptions are a service handler's interceptors, outermost first: a
// server span per RPC (so it covers refused calls too), the caller's
// signed identity verified with identityKey at now, and domain errors
// turned into Connect codes.
func HandlerOptions(identityKey ed25519.PublicKey, now func() time.Time) connect.HandlerOption {
	return connect.WithInterceptors(tracing.ServerInterceptor(), identity.Interceptor(identityKey, now), apperr.Interceptor())
}
