package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/services/chains/domain"
)

// runRef runs `fanfare referral args…` with stdin and returns its stdout.
func runRef(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := referral(args, strings.NewReader(stdin), &out)
	return strings.TrimSpace(out.String()), err
}

func mustRef(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := runRef(t, stdin, args...)
	if err != nil {
		t.Fatalf("referral %v: %v", args, err)
	}
	return out
}

func TestReferralKeygenExtendResolve(t *testing.T) {
	dir := t.TempDir()
	// The chains service's key file and the text distributors get from it.
	serviceFile := filepath.Join(dir, "chains.key")
	serviceKey, err := identity.LoadOrCreateKey(serviceFile)
	if err != nil {
		t.Fatal(err)
	}
	svc := domain.DeriveServiceKeys(serviceKey)
	boxText := mustRef(t, "", "service-key", "--key", serviceFile)
	if boxText != base64.StdEncoding.EncodeToString(svc.BoxPublic[:]) {
		t.Fatalf("service-key printed %q", boxText)
	}

	// Two distributors make keys and register the printed public keys.
	reg := map[string]ed25519.PublicKey{}
	for _, id := range []string{"alice", "bob"} {
		file := filepath.Join(dir, id+".key")
		pub, err := base64.StdEncoding.DecodeString(mustRef(t, "", "keygen", "--out", file))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("keygen printed no public key: %v", err)
		}
		reg[id] = pub
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file %v mode %v", err, fi.Mode())
		}
		if _, err := runRef(t, "", "keygen", "--out", file); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("keygen over an existing key: %v", err)
		}
	}

	// The service issues a root to the first distributor, who hands it on.
	root, err := domain.IssueRoot(svc, "tok-1", "song-1", "first")
	if err != nil {
		t.Fatal(err)
	}
	// alice gets the text, bob gets alice's token in a file.
	aliceTok := mustRef(t, "", "extend", "--token", domain.EncodeToken(root), "--song", "song-1",
		"--distributor", "alice", "--key", filepath.Join(dir, "alice.key"), "--service-key", boxText)
	tokFile := filepath.Join(dir, "from-alice.txt")
	if err := os.WriteFile(tokFile, []byte(aliceTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bobTok := mustRef(t, "", "extend", "--token", "@"+tokFile, "--song", "song-1",
		"--distributor", "bob", "--key", filepath.Join(dir, "bob.key"), "--service-key", boxText)
	if got := mustRef(t, bobTok+"\n", "inspect", "--token", "-"); !strings.HasPrefix(got, "layers: 3 ") {
		t.Fatalf("inspect printed %q", got)
	}

	tok, err := domain.ParseTokenText(bobTok)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(id string) (ed25519.PublicKey, bool) { k, ok := reg[id]; return k, ok }
	c, err := domain.Resolve(tok, "song-1", "carol", svc, lookup, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Raw, []string{"first", "alice", "bob"}) || !slices.Equal(c.Distributors, []string{"bob", "alice", "first"}) {
		t.Fatalf("chain raw %v distributors %v", c.Raw, c.Distributors)
	}
	// Purchased by alice: only the part of the walk before her is paid.
	if c, err = domain.Resolve(tok, "song-1", "alice", svc, lookup, 0); err != nil || !slices.Equal(c.Distributors, []string{"first"}) {
		t.Fatalf("bought by alice: %v %v", c.Distributors, err)
	}
}

func TestReferralExtendErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "d.key")
	mustRef(t, "", "keygen", "--out", keyFile)
	seed := make([]byte, ed25519.SeedSize)
	svc := domain.DeriveServiceKeys(ed25519.NewKeyFromSeed(seed))
	box := base64.StdEncoding.EncodeToString(svc.BoxPublic[:])
	root, _ := domain.IssueRoot(svc, "t", "s", "first")
	tok := domain.EncodeToken(root)
	long := root
	for i := 0; i < domain.DefaultMaxHops-1; i++ {
		long, _ = domain.Extend(long, "s", "d", identityKey(t, keyFile), svc.Public())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extend", "--song", "s", "--distributor", "d", "--key", keyFile, "--service-key", box}, "--token is required"},
		{[]string{"extend", "--token", tok, "--distributor", "d", "--key", keyFile, "--service-key", box}, "--song is required"},
		{[]string{"extend", "--token", "not-a-token", "--song", "s", "--distributor", "d", "--key", keyFile, "--service-key", box}, "--token: chains: malformed"},
		{[]string{"extend", "--token", "@" + filepath.Join(dir, "nope"), "--song", "s", "--distributor", "d", "--key", keyFile, "--service-key", box}, "no such file"},
		{[]string{"extend", "--token", tok, "--song", "s", "--distributor", "d", "--key", filepath.Join(dir, "nope.key"), "--service-key", box}, "fanfare referral keygen"},
		{[]string{"extend", "--token", tok, "--song", "s", "--distributor", "d", "--key", keyFile, "--service-key", "AAAA"}, "want a 32-byte box public key"},
		{[]string{"extend", "--token", tok, "--song", "other", "--distributor", "d", "--key", keyFile, "--service-key", box}, "song mismatch"},
		{[]string{"extend", "--token", domain.EncodeToken(long), "--song", "s", "--distributor", "d", "--key", keyFile, "--service-key", box}, "too many hops"},
		{[]string{"frobnicate"}, "unknown subcommand"},
	} {
		out, err := runRef(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
			t.Errorf("referral %v: out %q, error %v; want an error with %q", tc.args, out, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("extend created a missing key file")
	}
}

func identityKey(t *testing.T, file string) ed25519.PrivateKey {
	t.Helper()
	k, err := identity.LoadOrCreateKey(file)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
