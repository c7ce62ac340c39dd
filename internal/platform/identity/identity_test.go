package identity_test

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/identity"
)

func TestSignVerify(t *testing.T) {
	key, err := identity.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	tok, err := identity.Sign(key, identity.Identity{ID: "alice", Roles: []string{identity.RoleFinance}}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	id, err := identity.Verify(pub, tok, now.Add(30*time.Second))
	if err != nil || id.ID != "alice" || !id.Has(identity.RoleFinance) || id.Has(identity.RoleAuditor) {
		t.Fatalf("verify: %+v %v", id, err)
	}
	if _, err := identity.Verify(pub, tok, now.Add(time.Minute)); !errors.Is(err, identity.ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := identity.Verify(other, tok, now); !errors.Is(err, identity.ErrSignature) {
		t.Fatalf("foreign key: %v", err)
	}
	body, sig, _ := strings.Cut(tok, ".")
	tampered := body[:len(body)-2] + "AA." + sig
	if _, err := identity.Verify(pub, tampered, now); err == nil {
		t.Fatal("a tampered token verified")
	}
	for _, bad := range []string{"", "x", "a.b", "..."} {
		if _, err := identity.Verify(pub, bad, now); err == nil {
			t.Fatalf("token %q verified", bad)
		}
	}
}

func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	tok, _ := identity.Sign(key, identity.Identity{ID: "a"}, time.Hour, time.Unix(0, 0))
	f.Add(tok)
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.Verify(key.Public().(ed25519.PublicKey), s, time.Unix(0, 0))
		if err == nil && s != tok && id.ID == "" {
			t.Fatalf("accepted %q with an empty identity", s)
		}
	})
}
