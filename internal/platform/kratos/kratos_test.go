package kratos_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/kratos/kratostest"
	client "github.com/ory/kratos-client-go"
)

// TestRealKratos builds Kratos (cached; the first build takes several
// minutes, so run with -timeout 15m), starts it on SQLite, registers an
// identity through the native registration flow, logs in through the
// native login flow, checks the sessions with ToSession and grants roles
// in metadata_public through the admin API.
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
	const password = "correct-horse-battery-9"
	token, identityID := kratostest.Register(t, ctx, srv.PublicURL(), email, "Ada Lovelace", password)

	// The same email cannot register twice.
	if _, _, err := kratos.RegisterNative(ctx, srv.PublicURL(), email, "Ada Again", "another-horse-battery-7"); err == nil {
		t.Fatal("second registration with the same email succeeded")
	} else {
		t.Logf("second registration refused: %v", err)
	}

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

	// Logging in gives another session of the same identity; a wrong
	// password is refused.
	token2 := kratostest.Login(t, ctx, srv.PublicURL(), email, password)
	if token2 == token {
		t.Fatal("login returned the registration's session token")
	}
	sess2, _, err := frontend.ToSession(ctx).XSessionToken(token2).Execute()
	if err != nil {
		t.Fatalf("ToSession after login: %v", err)
	}
	if id2 := sess2.GetIdentity(); id2.Id != identityID {
		t.Fatalf("login session identity %s, registered %s", id2.Id, identityID)
	}
	if _, err := kratos.LoginNative(ctx, srv.PublicURL(), email, "wrong-password-1"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	} else {
		t.Logf("wrong password refused: %v", err)
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
