package domain

import (
	"errors"
	"slices"
	"strings"
	"sync"
)

// FingerprintIndex finds registered fingerprints similar to a query without
// scanning them all.
//
// Sub-hash keys: each 32-bit item is cut into three disjoint chunks (bits
// 0–10, 11–21, 22–31); two items that agree (≤ 2 differing bits) share at
// least one identical chunk (pigeonhole). A key at position p takes chunk c
// of item p, chunk c+1 of item p+4 and chunk c+2 of item p+8 (mod 3), for
// c = 0, 1, 2: 32 bits from three moments half a second apart, selective at
// a million songs even though neighbouring items are alike. A key survives
// in a variant when its three chunks do — about one time in three for items
// with 0–2 random flipped bits each. A registered song is indexed at every
// fingerprintIndexStride-th position of its first fingerprintIndexWindow
// items (under FingerprintMaxOffset, any match overlaps that window); a query
// looks up all three keys at each of its positions that can align with the
// window, and every hit votes for (song, offset). The songs with the most
// votes — at most MaxCandidates — are verified with FingerprintSimilarity's
// exact measure, so every answer is exact; votes only pick whom to verify.
//
// It is safe for concurrent use. Answers depend only on the sequence of
// Add and Remove calls; ties are broken by song id.
type FingerprintIndex struct {
	minPPM        uint32
	maxCandidates int

	mu       sync.RWMutex
	bits     uint          // len(buckets) == 1<<bits
	buckets  [][]uint64    // postings by the top bits of their tag
	postings int           // total postings
	songs    []indexedSong // by internal index
	free     []uint32      // removed internal indexes, reused LIFO
	ids      map[string]uint32
}

type indexedSong struct {
	id    string
	items []uint32 // nil when removed
}

// FingerprintIndexConfig tunes a FingerprintIndex; the zero value is the
// design's.
type FingerprintIndexConfig struct {
	// MinSimilarityPPM is the least similarity Lookup reports;
	// 0 means FingerprintConflictPPM.
	MinSimilarityPPM uint32
	// MaxCandidates bounds how many songs one Lookup verifies; 0 means 16.
	MaxCandidates int
	// ExpectedSongs sizes the hash table up front; it grows as needed anyway.
	ExpectedSongs int
}

// FingerprintMatch is a registered song similar to a query.
type FingerprintMatch struct {
	SongID string
	// SimilarityPPM is FingerprintSimilarity(song, query), 0..1,000,000.
	SimilarityPPM uint32
	// Offset aligns query item i with the song's item i+Offset.
	Offset int
}

// FingerprintIndexStats describes an index's size.
type FingerprintIndexStats struct {
	Songs    int // registered songs
	Items    int // fingerprint items held for verification
	Postings int // sub-hash postings
	Buckets  int // hash table buckets
}

const (
	// fingerprintIndexWindow: the leading items of a song that are indexed.
	// A match within FingerprintMaxOffset overlaps it by ≥ 136 items.
	fingerprintIndexWindow = 256
	// fingerprintIndexStride: every stride-th position in the window is
	// indexed; queries look up every position, so any shift lines up.
	fingerprintIndexStride = 4
	// fingerprintKeyGap: a key takes items p, p+gap and p+2·gap — far enough
	// apart (0.5 s) that sustained sound rarely makes them equal.
	fingerprintKeyGap = 4
	// fingerprintKeySpan: the items a key spans.
	fingerprintKeySpan = 2*fingerprintKeyGap + 1
	// fingerprintMaxKeyHits: a key with more postings than this (silence,
	// a drone) votes for nothing.
	fingerprintMaxKeyHits = 4096
	// fingerprintMaxVotes bounds the work of one lookup.
	fingerprintMaxVotes = 1 << 20

	fpSlotBits      = 6 // fingerprintIndexWindow/fingerprintIndexStride = 64 slots
	fpSongBits      = 64 - 32 - fpSlotBits
	fpMaxSongs      = 1 << fpSongBits // 67,108,864
	fpMinBucketBits = 10
	fpMaxBucketBits = 24
	fpMaxLoad       = 32 // postings per bucket before the table doubles
)

// A posting is one uint64: song index (26 bits) | slot (6 bits) | tag (32
// bits). The tag is the top half of the key's hash; its top bits pick the
// bucket, and comparing all 32 filters other keys out of the bucket.
func fpPosting(song uint32, slot int, tag uint32) uint64 {
	return uint64(song)<<(32+fpSlotBits) | uint64(slot)<<32 | uint64(tag)
}

// fpKeyTag hashes chunk c of x0, chunk c+1 of x1 and chunk c+2 of x2
// (mod 3). Taking a different chunk from each item matters: nearby items
// are alike, so the same chunk thrice would carry little more than 11 bits,
// while three different chunks carry about a whole item's 32.
func fpKeyTag(c int, x0, x1, x2 uint32) uint32 {
	ch := func(x uint32, c int) uint64 { return uint64(x>>(11*(c%3))) & 0x7ff }
	k := uint64(c+1)<<33 | ch(x0, c)<<22 | ch(x1, c+1)<<11 | ch(x2, c+2)
	// splitmix64's finalizer: a bijection that spreads every bit.
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	k ^= k >> 31
	return uint32(k >> 32)
}

// NewFingerprintIndex makes an empty index.
func NewFingerprintIndex(cfg FingerprintIndexConfig) *FingerprintIndex {
	x := &FingerprintIndex{minPPM: cfg.MinSimilarityPPM, maxCandidates: cfg.MaxCandidates, ids: map[string]uint32{}}
	if x.minPPM == 0 {
		x.minPPM = FingerprintConflictPPM
	}
	if x.maxCandidates <= 0 {
		x.maxCandidates = 16
	}
	x.bits = fpMinBucketBits
	want := cfg.ExpectedSongs * (fingerprintIndexWindow / fingerprintIndexStride) * 3
	for x.bits < fpMaxBucketBits && want > fpMaxLoad<<x.bits {
		x.bits++
	}
	x.buckets = make([][]uint64, 1<<x.bits)
	return x
}

// fpSongTags lists the (slot, tag) pairs a song is indexed under.
func fpSongTags(items []uint32, fn func(slot int, tag uint32)) {
	const g = fingerprintKeyGap
	for p := 0; p < fingerprintIndexWindow && p+fingerprintKeySpan <= len(items); p += fingerprintIndexStride {
		for c := range 3 {
			fn(p/fingerprintIndexStride, fpKeyTag(c, items[p], items[p+g], items[p+2*g]))
		}
	}
}

// Add registers songID's fingerprint, replacing any earlier one. The
// items are copied. It fails with a *FingerprintError when the fingerprint
// has fewer than FingerprintMinItems or more than FingerprintMaxItems items.
func (x *FingerprintIndex) Add(songID string, items []uint32) error {
	if songID == "" {
		return errors.New("fingerprint index: empty song id")
	}
	if len(items) < FingerprintMinItems {
		return fpErr(FingerprintErrTooShort, -1, "%d items, fewer than the %d required", len(items), FingerprintMinItems)
	}
	if len(items) > FingerprintMaxItems {
		return fpErr(FingerprintErrTooLong, -1, "%d items, more than the %d allowed", len(items), FingerprintMaxItems)
	}
	type st struct {
		slot int
		tag  uint32
	}
	tags := make([]st, 0, fingerprintIndexWindow/fingerprintIndexStride*3)
	fpSongTags(items, func(slot int, tag uint32) { tags = append(tags, st{slot, tag}) })
	own := slices.Clone(items)
	id := strings.Clone(songID)

	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.ids[id]; ok {
		x.removeLocked(old)
	}
	var s uint32
	if n := len(x.free); n > 0 {
		s, x.free = x.free[n-1], x.free[:n-1]
		x.songs[s] = indexedSong{id: id, items: own}
	} else {
		if len(x.songs) >= fpMaxSongs {
			return errors.New("fingerprint index: full")
		}
		s = uint32(len(x.songs))
		x.songs = append(x.songs, indexedSong{id: id, items: own})
	}
	x.ids[id] = s
	shift := 32 - x.bits
	for _, t := range tags {
		b := &x.buckets[t.tag>>shift]
		if len(*b) == cap(*b) { // grow by a quarter: less slack than append's doubling
			nb := make([]uint64, len(*b), len(*b)+len(*b)/4+4)
			copy(nb, *b)
			*b = nb
		}
		*b = append(*b, fpPosting(s, t.slot, t.tag))
	}
	x.postings += len(tags)
	for x.bits < fpMaxBucketBits && x.postings > fpMaxLoad<<x.bits {
		x.grow()
	}
	return nil
}

// grow doubles the table, splitting each bucket in two.
func (x *FingerprintIndex) grow() {
	nbits := x.bits + 1
	nb := make([][]uint64, 1<<nbits)
	bit := uint64(1) << (32 - nbits)
	for i, l := range x.buckets {
		hi := 0
		for _, p := range l {
			if p&bit != 0 {
				hi++
			}
		}
		lo := make([]uint64, 0, len(l)-hi+len(l)/8)
		up := make([]uint64, 0, hi+len(l)/8)
		for _, p := range l {
			if p&bit != 0 {
				up = append(up, p)
			} else {
				lo = append(lo, p)
			}
		}
		nb[2*i], nb[2*i+1] = lo, up
		x.buckets[i] = nil
	}
	x.buckets, x.bits = nb, nbits
}

// Remove unregisters songID; it reports whether it was registered.
func (x *FingerprintIndex) Remove(songID string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.ids[songID]
	if ok {
		x.removeLocked(s)
	}
	return ok
}

func (x *FingerprintIndex) removeLocked(s uint32) {
	shift := 32 - x.bits
	fpSongTags(x.songs[s].items, func(slot int, tag uint32) {
		want := fpPosting(s, slot, tag)
		b := &x.buckets[tag>>shift]
		if i := slices.Index(*b, want); i >= 0 {
			*b = slices.Delete(*b, i, i+1)
			x.postings--
		}
	})
	delete(x.ids, x.songs[s].id)
	x.songs[s] = indexedSong{}
	x.free = append(x.free, s)
}

// Len is the number of registered songs.
func (x *FingerprintIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.ids)
}

// Stats describes the index's size.
func (x *FingerprintIndex) Stats() FingerprintIndexStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	st := FingerprintIndexStats{Songs: len(x.ids), Postings: x.postings, Buckets: len(x.buckets)}
	for _, s := range x.songs {
		st.Items += len(s.items)
	}
	return st
}

// Lookup returns the registered songs whose similarity to query
// (FingerprintSimilarity(song, query, FingerprintMaxOffset)) is at least
// the index's minimum, best first (ties by song id). It verifies at most
// MaxCandidates songs: those with the most sub-hash votes.
func (x *FingerprintIndex) Lookup(query []uint32) []FingerprintMatch {
	if len(query) < FingerprintMinItems {
		return nil
	}
	const maxOff = FingerprintMaxOffset
	// Query positions that can align with the window within maxOff.
	end := min(len(query)-fingerprintKeySpan+1, fingerprintIndexWindow-fingerprintIndexStride+maxOff+1)
	qtags := make([]uint32, 0, end*3)
	for q := range end {
		for c := range 3 {
			qtags = append(qtags, fpKeyTag(c, query[q], query[q+fingerprintKeyGap], query[q+2*fingerprintKeyGap]))
		}
	}

	x.mu.RLock()
	defer x.mu.RUnlock()
	// Votes: song<<16 | (offset+maxOff), one entry per hit.
	var votes []uint64
	shift := 32 - x.bits
	for i, tag := range qtags {
		if len(votes) >= fingerprintMaxVotes {
			break
		}
		q := i / 3
		mark := len(votes)
		for _, p := range x.buckets[tag>>shift] {
			if uint32(p) != tag {
				continue
			}
			off := int(p>>32&(1<<fpSlotBits-1))*fingerprintIndexStride - q
			if off < -maxOff || off > maxOff {
				continue
			}
			if len(votes)-mark >= fingerprintMaxKeyHits {
				votes = votes[:mark] // a stop key: too common to tell songs apart
				break
			}
			votes = append(votes, p>>(32+fpSlotBits)<<16|uint64(off+maxOff))
		}
	}
	if len(votes) == 0 {
		return nil
	}
	slices.Sort(votes)

	// Per song, its best-voted offset.
	type cand struct {
		song  uint32
		off   int
		votes int
	}
	var cands []cand
	for i := 0; i < len(votes); {
		j := i
		for j < len(votes) && votes[j] == votes[i] {
			j++
		}
		song, off := uint32(votes[i]>>16), int(votes[i]&0xffff)-maxOff
		n := j - i
		if k := len(cands) - 1; k >= 0 && cands[k].song == song {
			if n > cands[k].votes {
				cands[k].off, cands[k].votes = off, n
			}
		} else {
			cands = append(cands, cand{song, off, n})
		}
		i = j
	}
	if len(cands) > x.maxCandidates {
		// Keep those with at least the maxCandidates-th most votes before
		// sorting: most songs have a stray vote or two.
		hist := make([]int, 64)
		for _, c := range cands {
			hist[min(c.votes, len(hist)-1)]++
		}
		t, n := len(hist)-1, 0
		for ; t > 1; t-- {
			if n += hist[t]; n >= x.maxCandidates {
				break
			}
		}
		cands = slices.DeleteFunc(cands, func(c cand) bool { return c.votes < t })
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.votes != b.votes {
			return b.votes - a.votes
		}
		return strings.Compare(x.songs[a.song].id, x.songs[b.song].id)
	})
	if len(cands) > x.maxCandidates {
		cands = cands[:x.maxCandidates]
	}

	var out []FingerprintMatch
	for _, c := range cands {
		s := x.songs[c.song]
		if ppm, off, ok := bestAlignment(s.items, query, maxOff, x.minPPM, c.off, true); ok {
			out = append(out, FingerprintMatch{SongID: s.id, SimilarityPPM: ppm, Offset: off})
		}
	}
	slices.SortFunc(out, func(a, b FingerprintMatch) int {
		if a.SimilarityPPM != b.SimilarityPPM {
			if a.SimilarityPPM > b.SimilarityPPM {
				return -1
			}
			return 1
		}
		return strings.Compare(a.SongID, b.SongID)
	})
	return out
}
