package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/identity"
)

// runToken prints a signed internal identity for calling services directly
// (curl, scripts) in development, until the gateway signs them from Kratos
// sessions.
func runToken(_ context.Context, args []string) error {
	fs := flags("token", "token --identity ID [--roles finance,auditor] [--ttl 1h] [--data-dir .fanfare]")
	dataDir := fs.String("data-dir", ".fanfare", "the data directory of `fanfare dev` (its identity.key signs)")
	id := fs.String("identity", "", "identity id to act as (required)")
	roles := fs.String("roles", "", "comma-separated roles: listener, artist, node_operator, moderator, finance, auditor")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errRequired("--identity")
	}
	key, err := identity.LoadOrCreateKey(filepath.Join(*dataDir, "identity.key"))
	if err != nil {
		return err
	}
	var rs []string
	if *roles != "" {
		rs = strings.Split(*roles, ",")
	}
	tok, err := identity.Sign(key, identity.Identity{ID: *id, Roles: rs}, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
