package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/freeport"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/kratos/kratostest"
)

// TestRolesCommand grants, revokes and lists roles on a real Kratos with
// `fanfare roles`, flags before, between and after the arguments.
func TestRolesCommand(t *testing.T) {
	t.Setenv(envName("kratos-admin-url"), "")
	srv := kratostest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ada, bob = "ada@example.com", "bob@example.com"
	_, adaID := kratostest.Register(t, ctx, srv.PublicURL(), ada, "Ada Lovelace", "correct-horse-battery-9")
	_, bobID := kratostest.Register(t, ctx, srv.PublicURL(), bob, "Bob Moog", "minimoog-model-d-1970")
	url := srv.AdminURL()
	adm := kratos.NewAdmin(url)
	check := func(id string, want ...string) {
		t.Helper()
		got, err := adm.Roles(ctx, id)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("roles of %s = %q, %v; want %q", id, got, err, want)
		}
	}
	run := func(want string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		if err := roles(ctx, args, &out, io.Discard); err != nil {
			t.Fatalf("fanfare roles %q: %v", args, err)
		}
		if got := strings.TrimSpace(out.String()); got != want {
			t.Fatalf("fanfare roles %q printed %q, want %q", args, got, want)
		}
	}

	// The form of the brief, through runRoles itself (prints to stdout).
	if err := runRoles(ctx, []string{"grant", ada, "finance", "--kratos-admin-url", url}); err != nil {
		t.Fatalf("runRoles grant: %v", err)
	}
	check(adaID, "finance")
	check(bobID)

	run(ada+": roles artist, finance", "--kratos-admin-url", url, "grant", ada, "artist")
	run(ada+": roles artist, finance", "grant", "--kratos-admin-url="+url, ada, "artist") // idempotent
	check(adaID, "artist", "finance")
	run(ada+": roles artist, finance", "list", ada, "--kratos-admin-url", url)
	run(ada+": roles artist", "revoke", ada, "finance", "--kratos-admin-url", url)
	run(ada+": roles artist", "revoke", ada, "finance", "--kratos-admin-url", url)
	check(adaID, "artist")
	run(bob+": no roles", "list", bob, "--kratos-admin-url", url)

	// The environment gives the URL when the flag does not; the flag wins.
	t.Setenv(envName("kratos-admin-url"), url)
	run(bob+": roles moderator", "grant", bob, "moderator")
	check(bobID, "moderator")
	t.Setenv(envName("kratos-admin-url"), "http://127.0.0.1:1")
	run(bob+": roles moderator, node_operator", "grant", bob, "node_operator", "--kratos-admin-url", url)
	check(bobID, "moderator", "node_operator")

	// An unknown email is an error naming it.
	err := roles(ctx, []string{"grant", "nobody@example.com", "artist", "--kratos-admin-url", url}, &bytes.Buffer{}, io.Discard)
	if !errors.Is(err, kratos.ErrNoIdentity) || !strings.Contains(err.Error(), "nobody@example.com") {
		t.Fatalf("grant to an unknown email: err = %v, want ErrNoIdentity", err)
	}
	check(adaID, "artist")
}

// TestRolesUsage checks that bad usages fail before calling Kratos.
func TestRolesUsage(t *testing.T) {
	addr, err := freeport.Addr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	t.Setenv(envName("kratos-admin-url"), url)
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "name a subcommand"},
		{[]string{"--kratos-admin-url", url}, "name a subcommand"},
		{[]string{"add", "ada@example.com", "artist"}, `unknown subcommand "add"`},
		{[]string{"grant"}, "usage: fanfare roles grant EMAIL ROLE"},
		{[]string{"grant", "ada@example.com"}, "usage: fanfare roles grant EMAIL ROLE"},
		{[]string{"revoke", "ada@example.com"}, "usage: fanfare roles revoke EMAIL ROLE"},
		{[]string{"grant", "ada@example.com", "artist", "finance"}, "usage: fanfare roles grant EMAIL ROLE"},
		{[]string{"list"}, "usage: fanfare roles list EMAIL"},
		{[]string{"list", "ada@example.com", "artist"}, "usage: fanfare roles list EMAIL"},
		{[]string{"grant", "ada", "artist"}, `"ada" is not an email`},
		{[]string{"grant", "ada@example.com", "admin"}, `unknown role "admin" (valid roles: listener, artist, node_operator, moderator, finance, auditor)`},
		{[]string{"revoke", "ada@example.com", "Artist", "--kratos-admin-url", url}, `unknown role "Artist"`},
		{[]string{"grant", "ada@example.com", "artist", "--kratos-admin-url", "127.0.0.1:4434"}, "--kratos-admin-url"},
		{[]string{"grant", "ada@example.com", "artist", "--kratos-admin-url"}, "flag needs an argument"},
		{[]string{"grant", "ada@example.com", "artist", "--admin-url", url}, "flag provided but not defined"},
	} {
		err := roles(ctx, c.args, &bytes.Buffer{}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fanfare roles %q: err = %v, want one containing %q", c.args, err, c.want)
		}
	}

	// Help is not an error for main.
	if err := roles(ctx, []string{"-h"}, &bytes.Buffer{}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("fanfare roles -h: err = %v, want flag.ErrHelp", err)
	}
	// A good usage reaches Kratos: nothing listens, and the error says where.
	if err := roles(ctx, []string{"list", "ada@example.com"}, &bytes.Buffer{}, io.Discard); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("fanfare roles list with nothing listening: err = %v, want one naming %s", err, addr)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, c := range []struct {
		args, want []string
		url        string
	}{
		{[]string{"list", "a@b"}, []string{"list", "a@b"}, ""},
		{[]string{"--u", "x", "list", "a@b"}, []string{"list", "a@b"}, "x"},
		{[]string{"list", "--u=x", "a@b"}, []string{"list", "a@b"}, "x"},
		{[]string{"grant", "a@b", "r", "-u", "x"}, []string{"grant", "a@b", "r"}, "x"},
		{[]string{"grant", "--", "-a@b", "--u", "x"}, []string{"grant", "-a@b", "--u", "x"}, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		u := fs.String("u", "", "")
		got, err := parseInterspersed(fs, c.args)
		if err != nil || !slices.Equal(got, c.want) || *u != c.url {
			t.Errorf("parseInterspersed(%q) = %q, -u %q, %v; want %q, -u %q", c.args, got, *u, err, c.want, c.url)
		}
	}
}
