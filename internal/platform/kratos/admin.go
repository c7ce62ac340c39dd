package kratos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/identity"
	client "github.com/ory/kratos-client-go"
)

// ValidRoles are the roles [Admin.Grant] and [Admin.Revoke] accept: the
// identity package's role constants (DESIGN §9).
var ValidRoles = []string{
	identity.RoleListener,
	identity.RoleArtist,
	identity.RoleNode,
	identity.RoleModerator,
	identity.RoleFinance,
	identity.RoleAuditor,
}

// ErrNoIdentity is wrapped by the errors of [Admin] methods when no
// identity has the email (or id) asked for.
var ErrNoIdentity = errors.New("no such identity")

// rolesKey is the metadata_public key holding an identity's roles, a JSON
// array of strings.
const rolesKey = "roles"

// Admin manages identities' roles through the Kratos admin API. Roles live
// in metadata_public.roles; Kratos includes metadata_public in sessions, so
// the gateway reads them from ToSession (see [RolesOf]) without an admin
// call.
type Admin struct {
	url string
	api client.IdentityAPI
}

// NewAdmin returns a client of the Kratos admin API at adminURL (e.g.
// http://127.0.0.1:4434, [Server.AdminURL]).
func NewAdmin(adminURL string) *Admin {
	adminURL = strings.TrimSuffix(adminURL, "/")
	cfg := client.NewConfiguration()
	cfg.Servers = client.ServerConfigurations{{URL: adminURL}}
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	return &Admin{url: adminURL, api: client.NewAPIClient(cfg).IdentityAPI}
}

// IdentityByEmail finds the identity whose password identifier is email
// (Kratos compares them case-insensitively) and returns its id and roles
// (sorted). If there is none, the error wraps [ErrNoIdentity].
func (a *Admin) IdentityByEmail(ctx context.Context, email string) (id string, roles []string, err error) {
	ident, err := a.byEmail(ctx, email)
	if err != nil {
		return "", nil, err
	}
	return ident.Id, RolesOf(ident.MetadataPublic), nil
}

// Roles returns the roles (sorted) of the identity with id. If there is
// none, the error wraps [ErrNoIdentity].
func (a *Admin) Roles(ctx context.Context, id string) ([]string, error) {
	ident, resp, err := a.api.GetIdentity(ctx, id).Execute()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("kratos: no identity with id %s: %w", id, ErrNoIdentity)
		}
		return nil, a.apiError("get identity "+id, err)
	}
	return RolesOf(ident.MetadataPublic), nil
}

// Grant gives role to the identity with email and returns its roles
// afterwards (sorted, each once). Granting a role the identity holds
// changes nothing. Other metadata_public keys are kept.
//
// Grant and [Admin.Revoke] read the roles and then write them: two changes
// to the same identity's roles at the same moment can lose one (the Kratos
// admin API offers no conditional update).
func (a *Admin) Grant(ctx context.Context, email, role string) (roles []string, err error) {
	return a.change(ctx, email, role, true)
}

// Revoke takes role from the identity with email and returns its roles
// afterwards (sorted). Revoking a role the identity does not hold changes
// nothing. Other metadata_public keys are kept.
func (a *Admin) Revoke(ctx context.Context, email, role string) ([]string, error) {
	return a.change(ctx, email, role, false)
}

// CheckRole returns nil if role is one of [ValidRoles], or else an error
// listing them.
func CheckRole(role string) error {
	if slices.Contains(ValidRoles, role) {
		return nil
	}
	return fmt.Errorf("unknown role %q (valid roles: %s)", role, strings.Join(ValidRoles, ", "))
}

func (a *Admin) change(ctx context.Context, email, role string, grant bool) ([]string, error) {
	if err := CheckRole(role); err != nil {
		return nil, err
	}
	ident, err := a.byEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	var meta map[string]any
	switch m := ident.MetadataPublic.(type) {
	case nil:
	case map[string]any:
		meta = m
	default:
		return nil, fmt.Errorf("kratos: identity %s (%s): metadata_public is a %T, not an object; not touching it", ident.Id, email, m)
	}

	roles := RolesOf(meta)
	if grant {
		roles = append(roles, role)
		slices.Sort(roles)
		roles = slices.Compact(roles)
	} else {
		roles = slices.DeleteFunc(roles, func(r string) bool { return r == role })
	}
	stored := make([]any, len(roles))
	for i, r := range roles {
		stored[i] = r
	}
	if meta != nil && reflect.DeepEqual(meta[rolesKey], stored) {
		return roles, nil // already so, and stored in canonical form
	}
	if meta == nil && len(roles) == 0 {
		return roles, nil // revoking from an identity without metadata
	}

	// Write only metadata_public.roles ("add" replaces an existing
	// member), so other keys, even ones changed meanwhile, stay as they
	// are. A null metadata_public has no member to add to: set it whole.
	op := client.JsonPatch{Op: "add", Path: "/metadata_public/" + rolesKey, Value: roles}
	if meta == nil {
		op = client.JsonPatch{Op: "add", Path: "/metadata_public", Value: map[string]any{rolesKey: roles}}
	}
	patched, _, err := a.api.PatchIdentity(ctx, ident.Id).JsonPatch([]client.JsonPatch{op}).Execute()
	if err != nil {
		return nil, a.apiError("patch identity "+ident.Id, err)
	}
	return RolesOf(patched.MetadataPublic), nil
}

func (a *Admin) byEmail(ctx context.Context, email string) (*client.Identity, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, errors.New("kratos: empty email")
	}
	list, _, err := a.api.ListIdentities(ctx).CredentialsIdentifier(email).Execute()
	if err != nil {
		return nil, a.apiError("list identities", err)
	}
	switch len(list) {
	case 0:
		return nil, fmt.Errorf("kratos: no identity with email %s: %w", email, ErrNoIdentity)
	case 1:
		return &list[0], nil
	}
	ids := make([]string, len(list))
	for i, ident := range list {
		ids[i] = ident.Id
	}
	return nil, fmt.Errorf("kratos: %d identities with email %s (%s)", len(list), email, strings.Join(ids, ", "))
}

// apiError wraps an error of the admin API with what was asked and, for
// an error answer, Kratos' message.
func (a *Admin) apiError(what string, err error) error {
	var apiErr *client.GenericOpenAPIError
	if errors.As(err, &apiErr) && len(apiErr.Body()) > 0 {
		return fmt.Errorf("kratos admin API %s: %s: %w: %s", a.url, what, err, flowMessages(apiErr.Body()))
	}
	return fmt.Errorf("kratos admin API %s: %s: %w", a.url, what, err)
}

// RolesOf reads the roles out of an identity's metadata_public (as decoded
// from JSON, e.g. a session's identity.metadata_public from ToSession):
// the strings of its "roles" array, sorted, each once. Anything else —
// nil, metadata_public not an object, roles missing or not an array — is
// no roles (nil); non-string or empty entries are skipped.
func RolesOf(metadataPublic any) []string {
	m, ok := metadataPublic.(map[string]any)
	if !ok {
		return nil
	}
	var roles []string
	switch list := m[rolesKey].(type) {
	case []any:
		for _, r := range list {
			if s, ok := r.(string); ok && s != "" {
				roles = append(roles, s)
			}
		}
	case []string:
		for _, s := range list {
			if s != "" {
				roles = append(roles, s)
			}
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}
