package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	client "github.com/ory/kratos-client-go"
)

const (
	// sessionTokenHeader carries a Kratos session token (native apps).
	sessionTokenHeader = kratos.SessionHeader
	// sessionCookie is Kratos' session cookie (browsers).
	sessionCookie = "ory_kratos_session"
)

// User is an authenticated caller.
type User struct {
	identity.Identity
	Email, Name string
	// Session is the Kratos session id; empty for an identity signed with
	// the gateway's key.
	Session string
}

// Sessions checks Kratos sessions with kratos-client-go's ToSession. A
// checked session is remembered for a few seconds, so a burst of calls
// costs Kratos one check.
type Sessions struct {
	api       client.FrontendAPI
	publicURL string
	remember  time.Duration
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]cachedUser
}

type cachedUser struct {
	user  User
	until time.Time
}

// NewSessions checks sessions against the Kratos public API at publicURL.
func NewSessions(publicURL string) *Sessions {
	cfg := client.NewConfiguration()
	cfg.Servers = client.ServerConfigurations{{URL: publicURL}}
	cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	return &Sessions{api: client.NewAPIClient(cfg).FrontendAPI, publicURL: publicURL,
		remember: 5 * time.Second, now: time.Now, cache: map[string]cachedUser{}}
}

// PublicURL is the Kratos public API (self-service flows).
func (s *Sessions) PublicURL() string { return s.publicURL }

// Check returns the user of a session token or a Cookie header. Every
// identity is a listener; other roles come from metadata_public.roles.
//
// Errors: Unauthenticated (no, expired or unknown session), Unavailable
// (Kratos cannot be asked).
func (s *Sessions) Check(ctx context.Context, token, cookie string) (User, error) {
	key := "t:" + token
	if token == "" {
		key = "c:" + cookie
	}
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.user, nil
	}
	req := s.api.ToSession(ctx)
	if token != "" {
		req = req.XSessionToken(token)
	} else {
		req = req.Cookie(cookie)
	}
	sess, resp, err := req.Execute()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return User{}, connect.NewError(connect.CodeUnauthenticated, errors.New("the Kratos session is missing, expired or not valid: log in again"))
		}
		return User{}, connect.NewError(connect.CodeUnavailable, fmt.Errorf("cannot check the session with Kratos: %w", err))
	}
	if !sess.GetActive() || sess.Identity == nil {
		return User{}, connect.NewError(connect.CodeUnauthenticated, errors.New("the Kratos session is not active: log in again"))
	}
	id := sess.GetIdentity()
	roles := kratos.RolesOf(id.MetadataPublic)
	if !slices.Contains(roles, identity.RoleListener) {
		roles = append(roles, identity.RoleListener)
	}
	slices.Sort(roles)
	u := User{Identity: identity.Identity{ID: id.Id, Roles: roles}, Session: sess.Id}
	if traits, ok := id.Traits.(map[string]any); ok {
		u.Email, _ = traits["email"].(string)
		u.Name, _ = traits["display_name"].(string)
	}
	until := now.Add(s.remember)
	if exp := sess.GetExpiresAt(); !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	s.mu.Lock()
	if len(s.cache) > 10000 {
		clear(s.cache) // bounded: a flood of distinct tokens cannot grow it
	}
	s.cache[key] = cachedUser{user: u, until: until}
	s.mu.Unlock()
	return u, nil
}
