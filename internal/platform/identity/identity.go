// Package identity carries who is calling from the gateway to the services:
// a short-lived token the gateway signs with Ed25519, verified by every
// service before it authorizes the call itself (DESIGN §1 rule 5).
package identity

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
)

// Header carries the signed identity on internal calls.
const Header = "Fanfare-Identity"

// Roles (DESIGN §9).
const (
	RoleListener  = "listener"
	RoleArtist    = "artist"
	RoleNode      = "node_operator"
	RoleModerator = "moderator"
	RoleFinance   = "finance"
	RoleAuditor   = "auditor"
)

// Identity is a verified caller.
type Identity struct {
	ID    string   `json:"sub"`
	Roles []string `json:"roles"`
}

// Has reports whether the identity holds role.
func (i Identity) Has(role string) bool { return slices.Contains(i.Roles, role) }

type claims struct {
	Identity
	Expires int64 `json:"exp"` // Unix seconds
}

// Errors of Verify.
var (
	ErrMissing   = errors.New("identity: no signed identity on the call")
	ErrMalformed = errors.New("identity: malformed identity token")
	ErrSignature = errors.New("identity: identity token signature does not verify")
	ErrExpired   = errors.New("identity: identity token expired")
)

// Sign makes a token for id valid for ttl.
func Sign(key ed25519.PrivateKey, id Identity, ttl time.Duration, now time.Time) (string, error) {
	if id.ID == "" {
		return "", errors.New("identity: empty identity id")
	}
	body, err := json.Marshal(claims{Identity: id, Expires: now.Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(key, body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Verify checks a token and returns its identity.
//
// Errors: ErrMissing, ErrMalformed, ErrSignature, ErrExpired.
func Verify(pub ed25519.PublicKey, token string, now time.Time) (Identity, error) {
	if token == "" {
		return Identity{}, ErrMissing
	}
	b64body, b64sig, ok := strings.Cut(token, ".")
	if !ok {
		return Identity{}, ErrMalformed
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	sig, err2 := base64.RawURLEncoding.DecodeString(b64sig)
	if err1 != nil || err2 != nil || len(sig) != ed25519.SignatureSize {
		return Identity{}, ErrMalformed
	}
	if !ed25519.Verify(pub, body, sig) {
		return Identity{}, ErrSignature
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil || c.ID == "" {
		return Identity{}, ErrMalformed
	}
	if now.Unix() >= c.Expires {
		return Identity{}, ErrExpired
	}
	return c.Identity, nil
}

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the verified identity of the call.
func From(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Interceptor refuses every call (unary or streaming) without a valid
// signed identity and puts the identity in the handler's context.
func Interceptor(pub ed25519.PublicKey, now func() time.Time) connect.Interceptor {
	return verifier{pub: pub, now: now}
}

type verifier struct {
	pub ed25519.PublicKey
	now func() time.Time
}

func (v verifier) verify(ctx context.Context, h http.Header) (context.Context, error) {
	id, err := Verify(v.pub, h.Get(Header), v.now())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("%w (header %s)", err, Header))
	}
	return With(ctx, id), nil
}

func (v verifier) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := v.verify(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (v verifier) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := v.verify(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

func (verifier) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// LoadOrCreateKey reads the Ed25519 signing key kept at path, creating one
// (mode 0600) the first time. The gateway signs with it; services verify
// with its public half.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("identity: %s does not hold an Ed25519 seed", path)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// Caller is the verified identity of the call, or an Unauthenticated error.
func Caller(ctx context.Context) (Identity, error) {
	id, ok := From(ctx)
	if !ok {
		return id, apperr.New(apperr.Unauthenticated, "no identity on the call")
	}
	return id, nil
}

// Require refuses an identity without role (PermissionDenied).
func Require(who Identity, role string) error {
	if !who.Has(role) {
		return apperr.New(apperr.PermissionDenied, "this call needs the %s role", role)
	}
	return nil
}

// RequireAny refuses an identity with none of roles (PermissionDenied,
// naming them).
func RequireAny(who Identity, roles ...string) error {
	for _, r := range roles {
		if who.Has(r) {
			return nil
		}
	}
	return apperr.New(apperr.PermissionDenied, "this call needs the %s role", strings.Join(roles, " or "))
}

// CallAs is a client interceptor that signs id into every call, unary or
// streaming (a fresh token each time, valid for a minute): what the gateway
// does when it forwards, and what tests and tools use to call a service
// directly.
func CallAs(key ed25519.PrivateKey, id Identity) connect.Interceptor {
	return signer{key: key, id: id}
}

type signer struct {
	key ed25519.PrivateKey
	id  Identity
}

func (s signer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		tok, err := Sign(s.key, s.id, time.Minute, time.Now())
		if err != nil {
			return nil, err
		}
		req.Header().Set(Header, tok)
		return next(ctx, req)
	}
}

func (s signer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		// A token that cannot be signed leaves the header out: the server
		// refuses the call as unauthenticated.
		if tok, err := Sign(s.key, s.id, time.Minute, time.Now()); err == nil {
			conn.RequestHeader().Set(Header, tok)
		}
		return conn
	}
}

func (signer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
