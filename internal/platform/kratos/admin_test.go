package kratos_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/freeport"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/kratos/kratostest"
	client "github.com/ory/kratos-client-go"
)

// TestAdminRoles grants and revokes roles in metadata_public on a real
// Kratos through kratos.Admin.
func TestAdminRoles(t *testing.T) {
	srv := kratostest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const ada, bob = "ada@example.com", "bob@example.com"
	adaToken, adaID := kratostest.Register(t, ctx, srv.PublicURL(), ada, "Ada Lovelace", "correct-horse-battery-9")
	_, bobID := kratostest.Register(t, ctx, srv.PublicURL(), bob, "Bob Moog", "minimoog-model-d-1970")

	adm := kratos.NewAdmin(srv.AdminURL() + "/") // a trailing slash is fine
	raw := rawAdmin(srv.AdminURL())
	metadata := func(id string) map[string]any {
		t.Helper()
		got, _, err := raw.GetIdentity(ctx, id).Execute()
		if err != nil {
			t.Fatalf("GetIdentity %s: %v", id, err)
		}
		m, _ := got.MetadataPublic.(map[string]any)
		return m
	}
	wantRoles := func(what string, got []string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%s = %q, want %q", what, got, want)
		}
	}

	id, roles, err := adm.IdentityByEmail(ctx, ada)
	if err != nil || id != adaID || len(roles) != 0 {
		t.Fatalf("IdentityByEmail(%s) = %q, %q, %v; want %s, no roles", ada, id, roles, err, adaID)
	}
	roles, err = adm.Roles(ctx, adaID)
	wantRoles("Roles of a new identity", roles, err)

	// Another key in metadata_public, and a role, set directly.
	if _, _, err := raw.PatchIdentity(ctx, adaID).JsonPatch([]client.JsonPatch{{
		Op: "add", Path: "/metadata_public", Value: map[string]any{"plan": "gold", "roles": []string{"listener"}},
	}}).Execute(); err != nil {
		t.Fatalf("PatchIdentity: %v", err)
	}

	roles, err = adm.Grant(ctx, ada, identity.RoleArtist)
	wantRoles("Grant artist", roles, err, "artist", "listener")
	roles, err = adm.Roles(ctx, adaID)
	wantRoles("Roles after grant", roles, err, "artist", "listener")
	roles, err = adm.Grant(ctx, ada, identity.RoleArtist)
	wantRoles("Grant artist again", roles, err, "artist", "listener")
	m := metadata(adaID)
	if !reflect.DeepEqual(m["roles"], []any{"artist", "listener"}) || m["plan"] != "gold" {
		t.Fatalf("metadata_public after two grants = %v", m)
	}
	// Kratos matches email identifiers case-insensitively.
	id, roles, err = adm.IdentityByEmail(ctx, " ADA@Example.com ")
	if id != adaID {
		t.Fatalf("IdentityByEmail(ADA@Example.com) = %q, %v; want %s", id, err, adaID)
	}
	wantRoles("IdentityByEmail roles", roles, err, "artist", "listener")

	// Bob is untouched; his metadata_public is null until his first grant.
	roles, err = adm.Roles(ctx, bobID)
	wantRoles("Roles of bob", roles, err)
	roles, err = adm.Revoke(ctx, bob, identity.RoleFinance)
	wantRoles("Revoke from an identity without metadata", roles, err)
	roles, err = adm.Grant(ctx, bob, identity.RoleFinance)
	wantRoles("Grant bob finance", roles, err, "finance")
	roles, err = adm.Grant(ctx, bob, identity.RoleAuditor)
	wantRoles("Grant bob auditor", roles, err, "auditor", "finance")

	// The session carries the roles; RolesOf reads them.
	pubCfg := client.NewConfiguration()
	pubCfg.Servers = client.ServerConfigurations{{URL: srv.PublicURL()}}
	sess, _, err := client.NewAPIClient(pubCfg).FrontendAPI.ToSession(ctx).XSessionToken(adaToken).Execute()
	if err != nil {
		t.Fatalf("ToSession: %v", err)
	}
	sid := sess.GetIdentity()
	wantRoles("RolesOf(session identity)", kratos.RolesOf(sid.MetadataPublic), nil, "artist", "listener")

	roles, err = adm.Revoke(ctx, ada, identity.RoleArtist)
	wantRoles("Revoke artist", roles, err, "listener")
	roles, err = adm.Revoke(ctx, ada, identity.RoleArtist)
	wantRoles("Revoke artist again", roles, err, "listener")
	roles, err = adm.Revoke(ctx, ada, identity.RoleListener)
	wantRoles("Revoke listener", roles, err)
	if m := metadata(adaID); m["plan"] != "gold" || !reflect.DeepEqual(m["roles"], []any{}) {
		t.Fatalf("metadata_public after revokes = %v", m)
	}
	roles, err = adm.Roles(ctx, bobID)
	wantRoles("Roles of bob after ada's revokes", roles, err, "auditor", "finance")

	// An unknown role is refused, naming the valid ones, and writes nothing.
	for _, f := range []func(context.Context, string, string) ([]string, error){adm.Grant, adm.Revoke} {
		_, err := f(ctx, bob, "admin")
		if err == nil || !strings.Contains(err.Error(), `"admin"`) {
			t.Fatalf("unknown role: err = %v", err)
		}
		for _, r := range kratos.ValidRoles {
			if !strings.Contains(err.Error(), r) {
				t.Fatalf("unknown role error does not list %s: %v", r, err)
			}
		}
	}
	roles, err = adm.Roles(ctx, bobID)
	wantRoles("Roles of bob after refused changes", roles, err, "auditor", "finance")

	// Unknown identities.
	const nobody = "nobody@example.com"
	if _, _, err := adm.IdentityByEmail(ctx, nobody); !errors.Is(err, kratos.ErrNoIdentity) || !strings.Contains(err.Error(), nobody) {
		t.Fatalf("IdentityByEmail(unknown) err = %v, want ErrNoIdentity naming the email", err)
	}
	if _, err := adm.Grant(ctx, nobody, identity.RoleArtist); !errors.Is(err, kratos.ErrNoIdentity) {
		t.Fatalf("Grant(unknown) err = %v, want ErrNoIdentity", err)
	}
	if _, err := adm.Revoke(ctx, nobody, identity.RoleArtist); !errors.Is(err, kratos.ErrNoIdentity) {
		t.Fatalf("Revoke(unknown) err = %v, want ErrNoIdentity", err)
	}
	if _, err := adm.Roles(ctx, "8d5f5c1e-6a0e-4f44-9a53-3f1d2c0b9e11"); !errors.Is(err, kratos.ErrNoIdentity) {
		t.Fatalf("Roles(unknown id) err = %v, want ErrNoIdentity", err)
	}

	// A metadata_public that is not an object is left alone.
	if _, _, err := raw.PatchIdentity(ctx, bobID).JsonPatch([]client.JsonPatch{{
		Op: "replace", Path: "/metadata_public", Value: []string{"not", "an", "object"},
	}}).Execute(); err != nil {
		t.Fatalf("PatchIdentity: %v", err)
	}
	if _, err := adm.Grant(ctx, bob, identity.RoleArtist); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Fatalf("Grant on a non-object metadata_public: err = %v", err)
	}
	got, _, err := raw.GetIdentity(ctx, bobID).Execute()
	if err != nil || !reflect.DeepEqual(got.MetadataPublic, []any{"not", "an", "object"}) {
		t.Fatalf("metadata_public after refused grant = %v, %v", got.MetadataPublic, err)
	}
}

func TestAdminUnreachable(t *testing.T) {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = kratos.NewAdmin("http://"+addr).Grant(context.Background(), "ada@example.com", identity.RoleArtist)
	if err == nil || !strings.Contains(err.Error(), addr) || errors.Is(err, kratos.ErrNoIdentity) {
		t.Fatalf("Grant on nothing listening: err = %v", err)
	}
}

func TestRolesOf(t *testing.T) {
	for _, c := range []struct {
		in   any
		want []string
	}{
		{nil, nil},
		{"roles", nil},
		{[]any{"artist"}, nil},
		{map[string]any{}, nil},
		{map[string]any{"roles": "artist"}, nil},
		{map[string]any{"roles": nil}, nil},
		{map[string]any{"roles": []any{}}, nil},
		{map[string]any{"roles": []any{"listener", "artist", 7, "", "artist", nil}}, []string{"artist", "listener"}},
		{map[string]any{"roles": []string{"finance", "auditor"}, "plan": "gold"}, []string{"auditor", "finance"}},
	} {
		if got := kratos.RolesOf(c.in); !slices.Equal(got, c.want) || (c.want == nil && got != nil) {
			t.Errorf("RolesOf(%#v) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestValidRoles(t *testing.T) {
	want := []string{identity.RoleListener, identity.RoleArtist, identity.RoleNode, identity.RoleModerator, identity.RoleFinance, identity.RoleAuditor}
	if !slices.Equal(kratos.ValidRoles, want) {
		t.Fatalf("ValidRoles = %v", kratos.ValidRoles)
	}
	for _, r := range want {
		if err := kratos.CheckRole(r); err != nil {
			t.Errorf("CheckRole(%s): %v", r, err)
		}
	}
	if err := kratos.CheckRole("Artist"); err == nil {
		t.Error("CheckRole(Artist) accepted a differently cased role")
	}
}

func rawAdmin(adminURL string) client.IdentityAPI {
	cfg := client.NewConfiguration()
	cfg.Servers = client.ServerConfigurations{{URL: adminURL}}
	return client.NewAPIClient(cfg).IdentityAPI
}
