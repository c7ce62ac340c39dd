// Package gateway is Fanfare's only public door (DESIGN §1 rule 5): one
// port serving Connect, gRPC and gRPC-Web for every service's API, gRPC
// health and reflection, and the web pages. It checks the caller's Ory
// Kratos session, opens a new identity's accounts on first use, limits
// request sizes and rates per identity, and forwards each call to the
// owning service with a short-lived identity it signs with Ed25519. The
// services authorize every call themselves.
package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/identity"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/rs/cors"
	"golang.org/x/time/rate"
)

// Backend is one service's API: in-process (Handler, `fanfare dev`) or at
// URLs (distributed mode; calls go round-robin over the instances).
type Backend struct {
	// Service is the fully-qualified service name, e.g.
	// "fanfare.accounts.v1.AccountsService" (its path is /<Service>/).
	Service string
	Handler http.Handler
	URLs    []string
}

// Config configures a gateway.
type Config struct {
	Backends []Backend
	// Kratos checks sessions (required).
	Kratos *Sessions
	// SigningKey signs the identities forwarded to the services.
	SigningKey ed25519.PrivateKey
	// TokenTTL is how long a forwarded identity is valid (default 1 min).
	TokenTTL time.Duration
	// MaxRequestBytes bounds a request body (default 4 MiB).
	MaxRequestBytes int64
	// Rate and Burst limit calls per identity (defaults 100/s, burst 200).
	Rate  rate.Limit
	Burst int
	// CORSOrigins may call the API from browsers on other origins (none by
	// default; "*" allows any).
	CORSOrigins []string
	// PublicURL is where browsers reach the gateway (links, redirects).
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger
}

// Gateway serves the public port.
type Gateway struct {
	cfg      Config
	backends map[string]*backend // by service name
	mux      *http.ServeMux

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	opened   map[string]bool
}

type backend struct {
	Backend
	forward http.Handler
	// client calls the backend from the gateway itself (pages, first use).
	client *http.Client
	base   string
}

// New builds a gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Kratos == nil || len(cfg.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("gateway: a Kratos session checker and the signing key are required")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Minute
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 4 << 20
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 100
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 200
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	g := &Gateway{cfg: cfg, backends: map[string]*backend{}, mux: http.NewServeMux(),
		limiters: map[string]*rate.Limiter{}, opened: map[string]bool{}}
	var names []string
	for _, b := range cfg.Backends {
		be, err := newBackend(b)
		if err != nil {
			return nil, err
		}
		if _, dup := g.backends[b.Service]; dup {
			return nil, fmt.Errorf("gateway: service %s routed twice", b.Service)
		}
		g.backends[b.Service] = be
		names = append(names, b.Service)
		g.mux.Handle("/"+b.Service+"/", g.api(be))
	}
	slices.Sort(names)
	// Health and reflection answer without a session: they say nothing
	// about anyone's money.
	g.mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(names...)))
	reflector := grpcreflect.NewStaticReflector(names...)
	g.mux.Handle(grpcreflect.NewHandlerV1(reflector))
	g.mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	g.pages()
	return g, nil
}

func newBackend(b Backend) (*backend, error) {
	switch {
	case b.Service == "":
		return nil, errors.New("gateway: a backend without a service name")
	case b.Handler != nil && len(b.URLs) == 0:
		return &backend{Backend: b, forward: b.Handler, client: &http.Client{Transport: inProcess(b.Handler)}, base: "http://in-process"}, nil
	case b.Handler == nil && len(b.URLs) > 0:
		var us []*url.URL
		for _, raw := range b.URLs {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("gateway: %s: bad URL %q", b.Service, raw)
			}
			us = append(us, u)
		}
		// HTTP/2 to the service, so gRPC (trailers, bidi) passes through.
		tr := h2c.Transport()
		var next atomic.Uint64
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(us[(next.Add(1)-1)%uint64(len(us))])
				r.Out.Host = r.In.Host
			},
			Transport:     tr,
			FlushInterval: -1, // streams flow as they come
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				writeError(w, r, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s is not reachable: %w", b.Service, err)))
			},
		}
		// The gateway's own calls (pages, first use) go to the first.
		return &backend{Backend: b, forward: rp, client: &http.Client{Transport: tr}, base: strings.TrimSuffix(b.URLs[0], "/")}, nil
	default:
		return nil, fmt.Errorf("gateway: %s needs either a handler or URLs", b.Service)
	}
}

// Handler is the public port's handler (CORS around everything).
func (g *Gateway) Handler() http.Handler {
	origins := g.cfg.CORSOrigins
	c := cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   connectcors.AllowedMethods(),
		AllowedHeaders:   append(connectcors.AllowedHeaders(), "X-Session-Token"),
		ExposedHeaders:   connectcors.ExposedHeaders(),
		AllowCredentials: !slices.Contains(origins, "*"),
		MaxAge:           7200,
	})
	return c.Handler(g.mux)
}

// api authenticates a call and forwards it to b.
func (g *Gateway) api(b *backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > g.cfg.MaxRequestBytes {
			writeError(w, r, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("request body of %d bytes is over the gateway's limit of %d bytes", r.ContentLength, g.cfg.MaxRequestBytes)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxRequestBytes)
		who, err := g.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := g.admit(r.Context(), who); err != nil {
			writeError(w, r, err)
			return
		}
		tok, err := identity.Sign(g.cfg.SigningKey, who.Identity, g.cfg.TokenTTL, g.cfg.Now())
		if err != nil {
			writeError(w, r, connect.NewError(connect.CodeInternal, err))
			return
		}
		// The services see the signed identity, never the credentials.
		r.Header.Set(identity.Header, tok)
		r.Header.Del("Cookie")
		r.Header.Del(sessionTokenHeader)
		b.forward.ServeHTTP(w, r)
	})
}

// authenticate finds the caller: a Kratos session (cookie or
// X-Session-Token), or else an identity signed with the gateway's own key
// (`fanfare token`, operators' tools).
func (g *Gateway) authenticate(r *http.Request) (User, error) {
	token, cookie := r.Header.Get(sessionTokenHeader), r.Header.Get("Cookie")
	if token == "" && !strings.Contains(cookie, sessionCookie) {
		if signed := r.Header.Get(identity.Header); signed != "" {
			id, err := identity.Verify(g.cfg.SigningKey.Public().(ed25519.PublicKey), signed, g.cfg.Now())
			if err != nil {
				return User{}, connect.NewError(connect.CodeUnauthenticated, err)
			}
			return User{Identity: id}, nil
		}
		return User{}, connect.NewError(connect.CodeUnauthenticated,
			errors.New("no session: log in with Kratos and send its session cookie or the X-Session-Token header"))
	}
	return g.cfg.Kratos.Check(r.Context(), token, cookie)
}

// admit applies the rate limit and opens a new identity's accounts.
func (g *Gateway) admit(ctx context.Context, who User) error {
	g.mu.Lock()
	lim := g.limiters[who.ID]
	if lim == nil {
		lim = rate.NewLimiter(g.cfg.Rate, g.cfg.Burst)
		g.limiters[who.ID] = lim
	}
	opened := g.opened[who.ID]
	g.mu.Unlock()
	if !lim.AllowN(g.cfg.Now(), 1) {
		return connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("rate limit exceeded: at most %g calls per second (burst %d) per identity; retry later", float64(g.cfg.Rate), g.cfg.Burst))
	}
	if opened || who.Session == "" {
		return nil
	}
	if err := g.openAccounts(ctx, who.Identity); err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("opening your accounts on first use failed: %w", err))
	}
	g.mu.Lock()
	g.opened[who.ID] = true
	g.mu.Unlock()
	return nil
}

// writeError answers in the call's protocol (Connect, gRPC or gRPC-Web),
// or as Connect JSON for anything else.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ew := connect.NewErrorWriter()
	if ew.IsSupported(r) {
		_ = ew.Write(w, r, err)
		return
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = connect.NewError(apperr.Code(err), err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus(ce.Code()))
	fmt.Fprintf(w, `{"code":%q,"message":%q}`+"\n", ce.Code().String(), ce.Message())
}

func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// client returns the HTTP client and base URL the gateway calls service
// with itself. A service that is not routed gets a client whose every call
// fails with Unavailable, saying so.
func (g *Gateway) client(service string) (*http.Client, string) {
	b := g.backends[service]
	if b == nil {
		return &http.Client{Transport: notRouted(service)}, "http://not-routed"
	}
	return b.client, b.base
}

type notRouted string

func (s notRouted) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("no %s is routed through this gateway", string(s)))
}

// as signs who into every call of a client the gateway makes itself.
func (g *Gateway) as(who identity.Identity) connect.Option {
	return connect.WithInterceptors(identity.CallAs(g.cfg.SigningKey, who))
}

// openAccounts opens a new identity's wallets (and pays its welcome
// credit): OpenAccount is idempotent per identity, so a gateway restart
// asking again is harmless.
func (g *Gateway) openAccounts(ctx context.Context, who identity.Identity) error {
	_, err := g.accounts(who).OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	return err
}
