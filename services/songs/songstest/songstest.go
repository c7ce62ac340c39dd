// Package songstest holds what tests that register songs need from the
// songs service.
package songstest

import "crypto/sha256"

// Fingerprint is a pseudo-random Chromaprint fingerprint of 300 items from
// a seed (xorshift): fingerprints of unrelated seeds never match within
// the registrar's bounds, so each seed registers as its own song.
func Fingerprint(seed string) []uint32 {
	s := sha256.Sum256([]byte(seed))
	x := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24 | 1 // xorshift never leaves 0
	out := make([]uint32, 300)
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = x
	}
	return out
}
