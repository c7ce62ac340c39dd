package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/fanfare/fanfare/internal/platform/kratos"
)

const defaultKratosAdminURL = "http://127.0.0.1:4434"

var rolesSynopsis = `roles grant EMAIL ROLE | roles revoke EMAIL ROLE | roles list EMAIL  [--kratos-admin-url URL]

Grants, revokes or lists the roles of the identity whose email is EMAIL.
Roles live in the identity's metadata_public.roles in Kratos and are changed
through the Kratos admin API; the gateway reads them from the session.
Flags may come before the subcommand, between or after its arguments:
  fanfare roles grant ada@example.com artist --kratos-admin-url http://127.0.0.1:4434
  fanfare roles --kratos-admin-url http://127.0.0.1:4434 list ada@example.com

Roles: ` + strings.Join(kratos.ValidRoles, ", ") + `.
Granting a role held, or revoking one not held, changes nothing. Prints the
identity's roles afterwards, e.g. "ada@example.com: roles artist, listener".`

// runRoles is `fanfare roles`: an operator's way to give identities roles
// (DESIGN §9) without calling the Kratos admin API by hand.
func runRoles(ctx context.Context, args []string) error {
	return roles(ctx, args, os.Stdout, os.Stderr)
}

// roles runs `fanfare roles args…`, printing the result to stdout and
// usage to stderr.
func roles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("roles", rolesSynopsis)
	fs.SetOutput(stderr)
	adminURL := fs.String("kratos-admin-url", defaultKratosAdminURL, "Kratos admin API; default $"+envName("kratos-admin-url")+" if set")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("name a subcommand: grant, revoke or list")
	}
	sub, pos := pos[0], pos[1:]
	want := 2
	switch sub {
	case "grant", "revoke":
	case "list":
		want = 1
	default:
		return fmt.Errorf("unknown subcommand %q (have grant, revoke, list)", sub)
	}
	if len(pos) != want {
		if want == 1 {
			return fmt.Errorf("usage: fanfare roles list EMAIL (got %d arguments)", len(pos))
		}
		return fmt.Errorf("usage: fanfare roles %s EMAIL ROLE (got %d arguments)", sub, len(pos))
	}
	email := pos[0]
	if email == "" || !strings.Contains(email, "@") {
		return fmt.Errorf("%q is not an email", email)
	}
	if want == 2 {
		if err := kratos.CheckRole(pos[1]); err != nil {
			return err
		}
	}
	if err := checkHTTPURL(*adminURL); err != nil {
		return fmt.Errorf("--kratos-admin-url: %w", err)
	}

	adm := kratos.NewAdmin(*adminURL)
	var held []string
	switch sub {
	case "grant":
		held, err = adm.Grant(ctx, email, pos[1])
	case "revoke":
		held, err = adm.Revoke(ctx, email, pos[1])
	case "list":
		_, held, err = adm.IdentityByEmail(ctx, email)
	}
	if err != nil {
		return err
	}
	if len(held) == 0 {
		fmt.Fprintf(stdout, "%s: no roles\n", email)
	} else {
		fmt.Fprintf(stdout, "%s: roles %s\n", email, strings.Join(held, ", "))
	}
	return nil
}

// parseInterspersed parses flags before, between and after the positional
// arguments (the flag package stops at the first non-flag) and returns the
// positional ones in order. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
