// Package domain is the pure core of the chains service (DESIGN §4):
// referral tokens that distributors extend offline and the service resolves
// at purchase into the ordered chain of distributors to pay. No I/O, no
// clock; the only randomness is the ephemeral key of each sealed box.
//
// # Tokens
//
// The service issues a root token ([IssueRoot]) naming a song and the first
// distributor, signed with the service's Ed25519 key. A distributor passing
// the song on appends itself ([Extend]): the new outer layer is an anonymous
// sealed box (golang.org/x/crypto/nacl/box SealAnonymous) to the service's
// X25519 key around the distributor's id, the song id, its Ed25519 signature
// over (SHA-256 of the previous token, song id, distributor id) and the
// previous token. So a distributor can append but cannot read earlier layers
// (only the service can open them), cannot reorder or drop them (every
// signature binds the exact token under it), and cannot forge a root.
// Distributor keys are registered with the service; [Resolve] looks them up.
//
// # Wire format (version 1)
//
// Every layer starts with a 6-byte cleartext header: "FRT1", a kind byte
// (0x01 root, 0x02 hop) and the number of layers of the token, root
// included (1 for a root, 2–255 for a hop). An id is one length byte then
// 1–[MaxIDLen] bytes of UTF-8. Then:
//
//	root: tokenID songID distributorID sig[64]
//	      sig = Ed25519(service, "fanfare/referral-root/v1\x00" || everything before sig)
//	hop:  SealAnonymous(service box key,
//	          distributorID songID sig[64] uint32be(len(prev)) prev)
//	      sig = Ed25519(distributor, "fanfare/referral-hop/v1\x00" ||
//	          SHA-256(prev) || songID || distributorID)
//
// Nothing may trail a field list, and a token is at most [MaxTokenSize]
// bytes. The text form ([EncodeToken], [ParseTokenText]) is URL-safe base64
// without padding.
//
// The layer count is in the clear so that Extend can refuse the 17th layer
// offline and Resolve can reject an over-long token before opening
// anything. It is not signed, but it cannot lie: Resolve checks that every
// layer states exactly one more than the layer inside it and the root states
// 1, and the inner layers are sealed, so a changed count is ErrMalformed.
//
// # Chains
//
// [Resolve] peels every layer, verifies every signature and song id, and
// returns the raw walk (root first) and the distributors to pay, nearest to
// the purchaser first, after [EraseLoops] removed loops, repeats and the
// purchaser. Its errors map one-to-one to the DistributorChainRejected
// reasons ([ReasonOf]).
package domain
