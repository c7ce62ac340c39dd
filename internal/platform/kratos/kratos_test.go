package kratos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/kratos"
	client "github.com/ory/kratos-client-go"
)

// TestRealKratos builds Kratos (cached; the first build takes several
// minutes, so run with -timeout 15m), starts it on SQLite, registers an
// identity through the native registration flow, checks the session with
// ToSession and grants roles in metadata_public through the admin API.
func TestRealKratos(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()

	start := time.Now()
	bin, err := kratos.Binary(ctx)
	if err != nil {
		t.Fatalf("build kratos: %v", err)
	}
	t.Logf("kratos binary %s ready in %s", bin, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	srv, err := kratos.Start(ctx, kratos.Config{DataDir: t.TempDir(), PublicAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Binary: bin})
	if err != nil {
		t.Fatalf("start kratos: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close kratos: %v", err)
		}
	})
	t.Logf("kratos migrated and ready in %s (public %s, admin %s)", time.Since(start).Round(time.Millisecond), srv.PublicURL(), srv.AdminURL())

	const email = "ada@example.com"
	token, identityID := registerNative(t, ctx, srv.PublicURL(), email, "Ada Lovelace", "correct-horse-battery-9")

	// The gateway's check: ToSession with X-Session-Token.
	pubCfg := client.NewConfiguration()
	pubCfg.Servers = client.ServerConfigurations{{URL: srv.PublicURL()}}
	frontend := client.NewAPIClient(pubCfg).FrontendAPI
	sess, _, err := frontend.ToSession(ctx).XSessionToken(token).Execute()
	if err != nil {
		t.Fatalf("ToSession: %v", err)
	}
	if !sess.GetActive() {
		t.Fatalf("session not active: %+v", sess)
	}
	id := sess.GetIdentity()
	if id.Id != identityID {
		t.Fatalf("session identity %s, registered %s", id.Id, identityID)
	}
	traits, _ := id.Traits.(map[string]any)
	if traits["email"] != email || traits["display_name"] != "Ada Lovelace" {
		t.Fatalf("session traits = %v", id.Traits)
	}

	// A wrong token is refused.
	if _, resp, err := frontend.ToSession(ctx).XSessionToken("ory_st_not-a-token").Execute(); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ToSession with a bogus token: resp=%v err=%v, want 401", resp, err)
	}

	// Roles live in metadata_public and are granted through the admin API.
	admCfg := client.NewConfiguration()
	admCfg.Servers = client.ServerConfigurations{{URL: srv.AdminURL()}}
	admin := client.NewAPIClient(admCfg).IdentityAPI
	patched, _, err := admin.PatchIdentity(ctx, identityID).JsonPatch([]client.JsonPatch{{
		Op:    "add",
		Path:  "/metadata_public",
		Value: map[string]any{"roles": []string{"listener", "artist"}},
	}}).Execute()
	if err != nil {
		t.Fatalf("PatchIdentity: %v", err)
	}
	if got := roles(t, patched.MetadataPublic); !reflect.DeepEqual(got, []string{"listener", "artist"}) {
		t.Fatalf("patched roles = %v", got)
	}
	got, _, err := admin.GetIdentity(ctx, identityID).Execute()
	if err != nil {
		t.Fatalf("GetIdentity: %v", err)
	}
	if r := roles(t, got.MetadataPublic); !reflect.DeepEqual(r, []string{"listener", "artist"}) {
		t.Fatalf("roles read back = %v", r)
	}
	// The session shows them too, so the gateway needs no admin call.
	sess, _, err = frontend.ToSession(ctx).XSessionToken(token).Execute()
	if err != nil {
		t.Fatalf("ToSession after grant: %v", err)
	}
	sid := sess.GetIdentity()
	if r := roles(t, sid.MetadataPublic); !reflect.DeepEqual(r, []string{"listener", "artist"}) {
		t.Fatalf("roles in session = %v", r)
	}
}

// registerNative runs the native (API) registration flow with the password
// method and returns the session token and identity id.
func registerNative(t *testing.T, ctx context.Context, publicURL, email, name, password string) (token, identityID string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, publicURL+"/self-service/registration/api", nil)
	req.Header.Set("Accept", "application/json")
	var flow struct {
		ID string `json:"id"`
		UI struct {
			Action string `json:"action"`
		} `json:"ui"`
	}
	doJSON(t, req, http.StatusOK, &flow)
	if flow.ID == "" || flow.UI.Action == "" {
		t.Fatalf("registration flow without id or action: %+v", flow)
	}

	body, _ := json.Marshal(map[string]any{
		"method":   "password",
		"password": password,
		"traits":   map[string]any{"email": email, "display_name": name},
	})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, flow.UI.Action, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var done struct {
		SessionToken string `json:"session_token"`
		Identity     struct {
			ID     string         `json:"id"`
			Traits map[string]any `json:"traits"`
		} `json:"identity"`
	}
	doJSON(t, req, http.StatusOK, &done)
	if done.SessionToken == "" || done.Identity.ID == "" {
		t.Fatalf("registration returned no session token or identity: %+v", done)
	}
	if done.Identity.Traits["email"] != email {
		t.Fatalf("registered traits = %v", done.Identity.Traits)
	}
	return done.SessionToken, done.Identity.ID
}

func doJSON(t *testing.T, req *http.Request, want int, into any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body) //nolint:errcheck
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL, resp.StatusCode, want, raw.Bytes())
	}
	if err := json.Unmarshal(raw.Bytes(), into); err != nil {
		t.Fatalf("%s %s: decode: %v: %s", req.Method, req.URL, err, raw.Bytes())
	}
}

func roles(t *testing.T, metadata any) []string {
	t.Helper()
	m, ok := metadata.(map[string]any)
	if !ok {
		t.Fatalf("metadata_public = %#v, want an object", metadata)
	}
	list, _ := m["roles"].([]any)
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, fmt.Sprint(r))
	}
	return out
}
