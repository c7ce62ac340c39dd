package gateway_test

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/fanfare/fanfare/gateway"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	"github.com/fanfare/fanfare/services/accounts"
	"golang.org/x/time/rate"
)

// backendFixture is a real accounts service on a real store and Kafka.
type backendFixture struct {
	key     ed25519.PrivateKey
	svc     *accounts.Service
	url     string
	handler http.Handler
}

func newBackend(t *testing.T) backendFixture {
	t.Helper()
	client := estest.Connect(t)
	store := eventstore.NewStore(client)
	brokers := servicetest.Bus(t, store)
	_, key, _ := ed25519.GenerateKey(nil)
	svc, err := accounts.New(servicetest.Ctx(t), accounts.Config{Store: store, Brokers: brokers, IdentityKey: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := servicetest.Serve(t, svc)
	_, h := svc.Handler()
	return backendFixture{key: key, svc: svc, url: url, handler: h}
}

// serve runs a gateway on an HTTP/2 (TLS) test server, so gRPC clients
// can call it too.
func serve(t *testing.T, cfg gateway.Config) (*httptest.Server, *gateway.Gateway) {
	t.Helper()
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Handler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, g
}

func wantErr(t *testing.T, err error, code connect.Code, mentions string) {
	t.Helper()
	if servicetest.Code(err) != code {
		t.Fatalf("err = %v, want %v", err, code)
	}
	if !strings.Contains(err.Error(), mentions) {
		t.Fatalf("err = %q, want it to mention %q", err, mentions)
	}
}

// TestGatewayForwardsEveryProtocolWithItsOwnIdentity routes a real
// service by URL (distributed mode) and in-process (`fanfare dev`), over
// Connect, gRPC and gRPC-Web: calls without credentials, with a forged
// identity or an unreachable Kratos are refused in the caller's protocol;
// an identity signed with the gateway's key passes; the service sees the
// gateway's identity, never the caller's credentials.
func TestGatewayForwardsEveryProtocolWithItsOwnIdentity(t *testing.T) {
	b := newBackend(t)
	ctx := servicetest.Ctx(t)
	// Kratos is not running at this URL: a session cannot be checked.
	sessions := gateway.NewSessions("http://127.0.0.1:1")
	for _, mode := range []struct {
		name    string
		backend gateway.Backend
	}{
		{"url", gateway.Backend{Service: accountsv1connect.AccountsServiceName, URLs: []string{b.url}}},
		{"in-process", gateway.Backend{Service: accountsv1connect.AccountsServiceName, Handler: b.handler}},
	} {
		srv, _ := serve(t, gateway.Config{Backends: []gateway.Backend{mode.backend}, Kratos: sessions, SigningKey: b.key})
		for _, proto := range []struct {
			name string
			opt  []connect.ClientOption
		}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}, {"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}}} {
			t.Run(mode.name+"/"+proto.name, func(t *testing.T) {
				call := func(extra ...connect.ClientOption) accountsv1connect.AccountsServiceClient {
					return accountsv1connect.NewAccountsServiceClient(srv.Client(), srv.URL, append(append([]connect.ClientOption{}, proto.opt...), extra...)...)
				}
				req := func() *connect.Request[accountsv1.OpenAccountRequest] {
					return connect.NewRequest(&accountsv1.OpenAccountRequest{})
				}
				_, err := call().OpenAccount(ctx, req())
				wantErr(t, err, connect.CodeUnauthenticated, "X-Session-Token")

				_, forged, _ := ed25519.GenerateKey(nil)
				_, err = call(connect.WithInterceptors(identity.CallAs(forged, identity.Identity{ID: "mallory", Roles: []string{"finance"}}))).OpenAccount(ctx, req())
				wantErr(t, err, connect.CodeUnauthenticated, "signature")

				r := req()
				r.Header().Set("X-Session-Token", "ory_st_whatever")
				_, err = call().OpenAccount(ctx, r)
				wantErr(t, err, connect.CodeUnavailable, "cannot check the session with Kratos")

				who := "gw-" + mode.name + "-" + proto.name
				res, err := call(connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: who}))).OpenAccount(ctx, req())
				if err != nil {
					t.Fatal(err)
				}
				if !res.Msg.Opened || len(res.Msg.AccountIds) != 2 || !strings.Contains(res.Msg.AccountIds[0], who) {
					t.Fatalf("OpenAccount = %v", res.Msg)
				}
				bal, err := call(connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: who}))).
					GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + who + ":USD"}))
				if err != nil {
					t.Fatal(err)
				}
				if bal.Msg.Total != "5.00" {
					t.Fatalf("welcome credit: balance %s, want 5.00", bal.Msg.Total)
				}
				// Another identity's wallet stays closed to this one.
				_, err = call(connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: "someone-else"}))).
					GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + who + ":USD"}))
				wantErr(t, err, connect.CodePermissionDenied, "finance or auditor role")
			})
		}
	}
}

// TestServicesRefuseCallsWithoutTheGatewaysIdentity: the service's own
// (internal) port refuses a call that did not come through the gateway,
// whatever other credentials it carries.
func TestServicesRefuseCallsWithoutTheGatewaysIdentity(t *testing.T) {
	b := newBackend(t)
	ctx := servicetest.Ctx(t)
	direct := accountsv1connect.NewAccountsServiceClient(http.DefaultClient, b.url)
	r := connect.NewRequest(&accountsv1.OpenAccountRequest{})
	r.Header().Set("X-Session-Token", "ory_st_anything")
	_, err := direct.OpenAccount(ctx, r)
	wantErr(t, err, connect.CodeUnauthenticated, identity.Header)
	_, other, _ := ed25519.GenerateKey(nil)
	_, err = accountsv1connect.NewAccountsServiceClient(http.DefaultClient, b.url,
		connect.WithInterceptors(identity.CallAs(other, identity.Identity{ID: "x", Roles: []string{"finance"}}))).OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	wantErr(t, err, connect.CodeUnauthenticated, "signature")
	// The gateway's identity is what lets the same call through.
	res, err := accountsv1connect.NewAccountsServiceClient(http.DefaultClient, b.url,
		connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: "x"}))).OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	if err != nil || !res.Msg.Opened {
		t.Fatalf("with the gateway's identity: %v %v", res, err)
	}
}

// TestGatewayLimitsSizeAndRate: a body over the limit and calls over an
// identity's rate are refused before they reach the service; another
// identity is not slowed down by the first.
func TestGatewayLimitsSizeAndRate(t *testing.T) {
	b := newBackend(t)
	ctx := servicetest.Ctx(t)
	now := time.Now() // fixed: the limiter never refills during the test
	srv, _ := serve(t, gateway.Config{Backends: []gateway.Backend{{Service: accountsv1connect.AccountsServiceName, Handler: b.handler}},
		Kratos: gateway.NewSessions("http://127.0.0.1:1"), SigningKey: b.key, MaxRequestBytes: 1024, Rate: rate.Every(time.Hour), Burst: 3,
		Now: func() time.Time { return now }})
	as := func(id string) accountsv1connect.AccountsServiceClient {
		return accountsv1connect.NewAccountsServiceClient(srv.Client(), srv.URL, connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: id})))
	}
	_, err := as("big").GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: strings.Repeat("x", 2000)}))
	wantErr(t, err, connect.CodeResourceExhausted, "over the gateway's limit of 1024 bytes")

	for i := range 3 {
		if _, err := as("busy").OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = as("busy").OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	wantErr(t, err, connect.CodeResourceExhausted, "rate limit exceeded")
	if _, err := as("calm").OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil {
		t.Fatalf("another identity: %v", err)
	}
}

// TestGatewayHealthReflectionAndCORS: gRPC health and reflection answer
// without a session and know every routed service; CORS preflights are
// answered for configured origins only.
func TestGatewayHealthReflectionAndCORS(t *testing.T) {
	b := newBackend(t)
	ctx := servicetest.Ctx(t)
	srv, _ := serve(t, gateway.Config{Backends: []gateway.Backend{{Service: accountsv1connect.AccountsServiceName, URLs: []string{b.url}}},
		Kratos: gateway.NewSessions("http://127.0.0.1:1"), SigningKey: b.key, CORSOrigins: []string{"https://app.example"}})

	resp, err := srv.Client().Post(srv.URL+"/grpc.health.v1.Health/Check", "application/json",
		strings.NewReader(`{"service":"`+accountsv1connect.AccountsServiceName+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("SERVING")) {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}

	rc := grpcreflect.NewClient(srv.Client(), srv.URL)
	stream := rc.NewStream(ctx)
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	stream.Close()
	var found bool
	for _, n := range names {
		found = found || string(n) == accountsv1connect.AccountsServiceName
	}
	if !found {
		t.Fatalf("reflection lists %v, want %s", names, accountsv1connect.AccountsServiceName)
	}

	preflight := func(origin string) http.Header {
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, srv.URL+"/"+accountsv1connect.AccountsServiceName+"/GetBalance", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,x-session-token") // sorted, as browsers send them
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	if h := preflight("https://app.example"); h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-session-token") {
		t.Fatalf("allowed origin preflight: %v", h)
	}
	if h := preflight("https://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin preflight allowed: %v", h)
	}
}

// TestGatewaySpreadsCallsOverInstances: a service at several URLs (scaled
// out) gets calls round-robin, over gRPC; an instance that is down answers
// unavailable, naming the service, and the next call goes to another.
func TestGatewaySpreadsCallsOverInstances(t *testing.T) {
	b := newBackend(t)
	ctx := servicetest.Ctx(t)
	var hits [2]atomic.Int32
	var urls []string
	var servers []*httptest.Server
	for i := range hits {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			b.handler.ServeHTTP(w, r)
		}))
		srv.Config.Protocols = h2c.Server()
		srv.Start()
		t.Cleanup(srv.Close)
		urls, servers = append(urls, srv.URL), append(servers, srv)
	}
	gw, _ := serve(t, gateway.Config{Backends: []gateway.Backend{{Service: accountsv1connect.AccountsServiceName, URLs: urls}},
		Kratos: gateway.NewSessions("http://127.0.0.1:1"), SigningKey: b.key})
	client := accountsv1connect.NewAccountsServiceClient(gw.Client(), gw.URL, connect.WithGRPC(),
		connect.WithInterceptors(identity.CallAs(b.key, identity.Identity{ID: "rr"})))
	for range 6 {
		if _, err := client.OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := hits[0].Load(), hits[1].Load(); a != 3 || b != 3 {
		t.Fatalf("instances served %d and %d of 6 calls, want 3 each", a, b)
	}
	servers[1].Close()
	var unavailable int
	for range 4 {
		_, err := client.OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
		if err != nil {
			wantErr(t, err, connect.CodeUnavailable, accountsv1connect.AccountsServiceName+" is not reachable")
			unavailable++
		}
	}
	if unavailable != 2 || hits[0].Load() != 5 {
		t.Fatalf("with one instance down: %d unavailable, first instance served %d in all; want 2 and 5", unavailable, hits[0].Load())
	}
}
