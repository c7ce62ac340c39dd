// Package sealbox seals small secrets to a service's X25519 key with NaCl
// anonymous sealed boxes (golang.org/x/crypto/nacl/box): only the holder of
// the private key can open them, and the sender stays anonymous. The
// registrar seals download locations with it and the chains service opens
// referral hops with it.
//
// A service keeps one Ed25519 key file; its box key pair is derived from
// that key's seed with a domain-separated hash, so the two never drift
// apart and no second secret has to be stored.
package sealbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// KeySize is the size of an X25519 public or private key.
const KeySize = 32

// Overhead is how many bytes sealing adds.
const Overhead = box.AnonymousOverhead

// ErrOpen is returned when a box does not open with the key (tampered, or
// sealed to another key).
var ErrOpen = errors.New("sealbox: box does not open with this key")

// ErrBadKey is returned for a public key that is not 32 bytes.
var ErrBadKey = errors.New("sealbox: a public key is 32 bytes")

// Keys is an X25519 key pair.
type Keys struct {
	Public, Private *[KeySize]byte
}

// Derive returns the box key pair of an Ed25519 key for one purpose (e.g.
// "fanfare/registrar/v1"): the same key and purpose always give the same pair.
func Derive(signing ed25519.PrivateKey, purpose string) Keys {
	h := sha256.New()
	h.Write([]byte("fanfare/sealbox/"))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(signing.Seed())
	var priv, pub [KeySize]byte
	copy(priv[:], h.Sum(nil))
	curve25519.ScalarBaseMult(&pub, &priv)
	return Keys{Public: &pub, Private: &priv}
}

// PublicKey checks and converts a public key given as bytes.
func PublicKey(b []byte) (*[KeySize]byte, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w, got %d", ErrBadKey, len(b))
	}
	var k [KeySize]byte
	copy(k[:], b)
	return &k, nil
}

// Seal seals msg to the public key.
func Seal(to *[KeySize]byte, msg []byte) ([]byte, error) {
	out, err := box.SealAnonymous(nil, msg, to, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sealbox: seal: %w", err)
	}
	return out, nil
}

// Open opens a sealed box. Errors: ErrOpen.
func (k Keys) Open(sealed []byte) ([]byte, error) {
	msg, ok := box.OpenAnonymous(nil, sealed, k.Public, k.Private)
	if !ok {
		return nil, ErrOpen
	}
	return msg, nil
}
