// Package adapters holds the songs service's read models over its own
// song-* streams.
package adapters

import (
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/fanfare/fanfare/services/songs/domain"
)

// Entry is what the catalog knows of one song.
type Entry struct {
	ID         string
	Status     domain.Status
	Current    domain.Version
	Version    uint64
	Copies     int
	Dispute    domain.Dispute
	AssignedTo string
}

// Catalog is the registrar's in-memory read model: the songs, their
// content hashes, fingerprints, search words, open disputes and the
// registration requests already handled. It is rebuilt from the event store
// at start and updated by Put after every write, so it answers at once. Safe
// for concurrent use.
type Catalog struct {
	fp *domain.FingerprintIndex

	mu       sync.RWMutex
	songs    map[string]*Entry
	byHash   map[[32]byte]string        // content hash → registered song
	requests map[string]string          // requester/request id → song it went to
	words    map[string]map[string]bool // "field:word" → song ids
}

// NewCatalog returns an empty catalog.
func NewCatalog(fp domain.FingerprintIndexConfig) *Catalog {
	return &Catalog{
		fp:       domain.NewFingerprintIndex(fp),
		songs:    map[string]*Entry{},
		byHash:   map[[32]byte]string{},
		requests: map[string]string{},
		words:    map[string]map[string]bool{},
	}
}

// Put replaces what the catalog knows of s with its current state.
func (c *Catalog) Put(s *domain.Song) error {
	cur := s.Current()
	if cur == nil {
		return nil
	}
	e := &Entry{ID: s.ID, Status: s.Status, Current: *cur, Version: uint64(len(s.Versions)), Copies: s.Copies(),
		Dispute: s.Dispute, AssignedTo: s.AssignedTo}

	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.songs[s.ID]
	c.songs[s.ID] = e
	for key := range s.Requests {
		c.requests[key] = s.ID
	}
	if old != nil {
		c.index(old, false)
	}
	c.index(e, true)
	if e.Status != domain.StatusRegistered {
		c.fp.Remove(s.ID)
		return nil
	}
	for _, v := range s.Versions {
		var h [32]byte
		copy(h[:], v.Description.ContentHash)
		if _, taken := c.byHash[h]; !taken {
			c.byHash[h] = s.ID
		}
	}
	if old == nil || old.Status != domain.StatusRegistered || !equalItems(old.Current.Description.Fingerprint, cur.Description.Fingerprint) {
		return c.fp.Add(s.ID, cur.Description.Fingerprint)
	}
	return nil
}

func equalItems(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// index adds (or removes) a registered song's search words.
func (c *Catalog) index(e *Entry, add bool) {
	if e.Status != domain.StatusRegistered {
		return
	}
	d := e.Current.Description
	fields := map[string][]string{"title": {d.Title}, "artist": d.Artists, "genre": {d.Genre}, "album": {d.Album}}
	for field, values := range fields {
		for _, v := range values {
			for _, w := range Words(v) {
				for _, key := range []string{field + ":" + w, ":" + w} {
					set := c.words[key]
					if add {
						if set == nil {
							set = map[string]bool{}
							c.words[key] = set
						}
						set[e.ID] = true
					} else if set != nil {
						delete(set, e.ID)
						if len(set) == 0 {
							delete(c.words, key)
						}
					}
				}
			}
		}
	}
}

// Words splits text into lower-case words of letters and digits.
func Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// Get returns a copy of a song's entry.
func (c *Catalog) Get(id string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.songs[id]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Request returns the song a requester's request went to.
func (c *Catalog) Request(key string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.requests[key]
	return id, ok
}

// ByContentHash returns the registered song with this content.
func (c *Catalog) ByContentHash(hash []byte) (string, bool) {
	var h [32]byte
	copy(h[:], hash)
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byHash[h]
	return id, ok
}

// Match returns the best registered song whose fingerprint conflicts with
// items.
func (c *Catalog) Match(items []uint32) (domain.FingerprintMatch, bool) {
	m := c.fp.Lookup(items)
	if len(m) == 0 {
		return domain.FingerprintMatch{}, false
	}
	return m[0], true
}

// Search returns registered songs having every word of query in field
// ("title", "artist", "genre", "album"; "" for any), ordered by title then
// id, after the song id `after` (a page cursor), at most limit.
func (c *Catalog) Search(query, field, after string, limit int) []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []string
	words := Words(query)
	if len(words) == 0 {
		for id, e := range c.songs {
			if e.Status == domain.StatusRegistered {
				ids = append(ids, id)
			}
		}
	} else {
		// Intersect, starting from the rarest word.
		sets := make([]map[string]bool, len(words))
		for i, w := range words {
			sets[i] = c.words[field+":"+w]
		}
		sort.Slice(sets, func(i, j int) bool { return len(sets[i]) < len(sets[j]) })
		for id := range sets[0] {
			all := true
			for _, s := range sets[1:] {
				if !s[id] {
					all = false
					break
				}
			}
			if all {
				ids = append(ids, id)
			}
		}
	}
	return c.page(ids, after, limit, func(e *Entry) string { return strings.ToLower(e.Current.Description.Title) })
}

// Disputes lists held registrations by song id, after `after`.
func (c *Catalog) Disputes(after string, limit int) []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []string
	for id, e := range c.songs {
		if e.Status == domain.StatusDisputed {
			ids = append(ids, id)
		}
	}
	return c.page(ids, after, limit, func(*Entry) string { return "" })
}

// page orders ids by (key, id) and returns up to limit entries after the
// entry with id `after`. Callers hold c.mu.
func (c *Catalog) page(ids []string, after string, limit int, key func(*Entry) string) []Entry {
	sort.Slice(ids, func(i, j int) bool {
		ki, kj := key(c.songs[ids[i]]), key(c.songs[ids[j]])
		if ki != kj {
			return ki < kj
		}
		return ids[i] < ids[j]
	})
	start := 0
	if after != "" {
		if a, ok := c.songs[after]; ok {
			ka := key(a)
			start = sort.Search(len(ids), func(i int) bool {
				ki := key(c.songs[ids[i]])
				return ki > ka || (ki == ka && ids[i] > after)
			})
		}
	}
	var out []Entry
	for _, id := range ids[start:] {
		if len(out) == limit {
			break
		}
		out = append(out, *c.songs[id])
	}
	return out
}
