package domain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"slices"
)

// Chain is a resolved referral token.
type Chain struct {
	// TokenID and SongID are the root's.
	TokenID, SongID string
	// Raw is every layer's distributor, root first, as sealed (repeats and
	// the purchaser included).
	Raw []string
	// Distributors are the distributors to pay, nearest to the purchaser
	// first: Raw with loops and the purchaser erased (see [EraseLoops]).
	Distributors []string
	// TokenHash is the SHA-256 of the token.
	TokenHash [32]byte
}

// Resolve peels a token at purchase and returns its chain. It checks, in
// this order: the arguments; the size and the cleartext header (a header
// stating more than maxHops layers is rejected before anything is opened);
// then, outermost layer first, that every hop opens with the service's box
// key, decodes exactly, and states its true layer count; then the root's
// signature by k.Sign and its song; then, innermost hop first, each hop's
// distributor key (looked up with distributorKey), signature and song. The
// first failure is returned, wrapped with the layer (1 = root) it concerns.
// maxHops ≤ 0 means DefaultMaxHops. Resolve never panics on any token.
//
// Errors: ErrInvalidArgument (song id, keys or lookup missing), ErrMalformed,
// ErrTooManyHops, ErrUnknownRoot, ErrBadSignature, ErrSongMismatch.
func Resolve(token []byte, songID, purchaserID string, k ServiceKeys, distributorKey func(id string) (ed25519.PublicKey, bool), maxHops int) (Chain, error) {
	switch {
	case checkID(songID) != nil:
		return Chain{}, fail(ErrInvalidArgument, "song id %v", checkID(songID))
	case len(k.Sign) != ed25519.PrivateKeySize || k.BoxPublic == nil || k.BoxPrivate == nil:
		return Chain{}, fail(ErrInvalidArgument, "incomplete service keys")
	case distributorKey == nil:
		return Chain{}, fail(ErrInvalidArgument, "no distributor key lookup")
	}
	if maxHops <= 0 {
		maxHops = DefaultMaxHops
	}
	_, n, err := header(token)
	if err != nil {
		return Chain{}, err
	}
	if n > maxHops {
		return Chain{}, fail(ErrTooManyHops, "%d layers, at most %d allowed", n, maxHops)
	}

	// Peel, outermost first. hops[i] is layer n-i.
	hops := make([]hop, 0, n-1)
	cur := token
	for layer := n; layer > 1; layer-- {
		kind, stated, err := header(cur)
		if err != nil {
			return Chain{}, atLayer(layer, err)
		}
		if kind != kindHop || stated != layer {
			return Chain{}, fail(ErrMalformed, "layer %d: a %s layer stating %d layers where a hop stating %d belongs",
				layer, kindName(kind), stated, layer)
		}
		h, err := openHop(cur, k)
		if err != nil {
			return Chain{}, atLayer(layer, err)
		}
		hops = append(hops, h)
		cur = h.prev
	}
	kind, stated, err := header(cur)
	if err != nil {
		return Chain{}, atLayer(1, err)
	}
	if kind != kindRoot {
		return Chain{}, fail(ErrMalformed, "layer 1: a hop stating %d layers where the root belongs", stated)
	}
	r, err := decodeRoot(cur)
	if err != nil {
		return Chain{}, atLayer(1, err)
	}

	// Verify, root first.
	if !ed25519.Verify(k.Sign.Public().(ed25519.PublicKey), rootMessage(r.signed), r.sig) {
		return Chain{}, fail(ErrUnknownRoot, "layer 1: the root is not signed by this service")
	}
	if r.songID != songID {
		return Chain{}, fail(ErrSongMismatch, "layer 1: the root is for song %q, not %q", r.songID, songID)
	}
	raw := make([]string, 0, n)
	raw = append(raw, r.distributorID)
	for i := len(hops) - 1; i >= 0; i-- {
		h, layer := hops[i], n-i
		pub, ok := distributorKey(h.distributorID)
		if !ok {
			return Chain{}, fail(ErrBadSignature, "layer %d: distributor %q is not registered", layer, h.distributorID)
		}
		if len(pub) != ed25519.PublicKeySize {
			return Chain{}, fail(ErrBadSignature, "layer %d: the registered key of distributor %q is not an Ed25519 public key", layer, h.distributorID)
		}
		if !ed25519.Verify(pub, hopMessage(h.prev, h.songID, h.distributorID), h.sig) {
			return Chain{}, fail(ErrBadSignature, "layer %d: the signature of distributor %q does not verify", layer, h.distributorID)
		}
		if h.songID != songID {
			return Chain{}, fail(ErrSongMismatch, "layer %d: distributor %q extended it for song %q, not %q", layer, h.distributorID, h.songID, songID)
		}
		raw = append(raw, h.distributorID)
	}
	return Chain{
		TokenID:      r.tokenID,
		SongID:       r.songID,
		Raw:          raw,
		Distributors: EraseLoops(raw, purchaserID),
		TokenHash:    sha256.Sum256(token),
	}, nil
}

// EraseLoops returns the distributors to pay for the walk root → … → last
// distributor → purchaser, nearest to the purchaser first. It is the loop
// erasure of that walk: going from the root, when a distributor reappears,
// everything since its previous occurrence is erased (so each is paid once,
// at its first place after the erasure); the purchaser ends the walk, so if
// the purchaser occurs in raw, everything from its first occurrence on is
// erased (the purchaser is never paid, and a loop through the purchaser is
// removed). Examples, root first, purchaser P:
//
//	[A B C A D]  →  [D A]
//	[A B B C]    →  [C B A]
//	[A P B]      →  [A]
//
// An empty purchaserID matches no distributor.
func EraseLoops(raw []string, purchaserID string) []string {
	path := make([]string, 0, len(raw))
	for _, id := range raw {
		if purchaserID != "" && id == purchaserID {
			break
		}
		if i := slices.Index(path, id); i >= 0 {
			path = path[:i+1]
			continue
		}
		path = append(path, id)
	}
	slices.Reverse(path)
	return path
}
