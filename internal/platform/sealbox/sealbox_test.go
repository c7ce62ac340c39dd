package sealbox_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/sealbox"
)

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestDeriveIsStableAndSeparated(t *testing.T) {
	a1 := sealbox.Derive(key(1), "registrar")
	a2 := sealbox.Derive(key(1), "registrar")
	if *a1.Public != *a2.Public || *a1.Private != *a2.Private {
		t.Fatal("the same key and purpose gave different pairs")
	}
	if b := sealbox.Derive(key(1), "chains"); *b.Public == *a1.Public {
		t.Fatal("two purposes share a box key")
	}
	if c := sealbox.Derive(key(2), "registrar"); *c.Public == *a1.Public {
		t.Fatal("two signing keys share a box key")
	}
}

func TestSealOpen(t *testing.T) {
	k := sealbox.Derive(key(1), "registrar")
	msg := []byte("https://cdn.example/song.ogg")
	sealed, err := sealbox.Seal(k.Public, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(msg)+sealbox.Overhead || bytes.Contains(sealed, msg) {
		t.Fatalf("sealed box has %d bytes or shows the message", len(sealed))
	}
	got, err := k.Open(sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open = %q, %v", got, err)
	}
	other := sealbox.Derive(key(2), "registrar")
	if _, err := other.Open(sealed); !errors.Is(err, sealbox.ErrOpen) {
		t.Fatalf("another key opened the box: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open(sealed); !errors.Is(err, sealbox.ErrOpen) {
		t.Fatalf("a tampered box opened: %v", err)
	}
	if _, err := sealbox.PublicKey(make([]byte, 31)); !errors.Is(err, sealbox.ErrBadKey) {
		t.Fatalf("a 31-byte key was accepted: %v", err)
	}
}
