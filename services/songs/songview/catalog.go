package songview

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"google.golang.org/protobuf/proto"
)

// Catalog is the in-memory song read model a service keeps from the songs
// topic (followed from its start at every start): the current description
// of every registered song.
type Catalog struct {
	mu      sync.Mutex
	songs   map[string]*eventsv1.SongDescription
	changed chan struct{} // closed and replaced when songs change
	ready   chan struct{} // closed once the topic was read to its end
	once    sync.Once
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{songs: map[string]*eventsv1.SongDescription{}, changed: make(chan struct{}), ready: make(chan struct{})}
}

// OnEvent applies one event of the songs topic (kafka.Follow's fn).
func (c *Catalog) OnEvent(_ context.Context, m proto.Message) error {
	d := Description(m) // new splits and prices apply to money that moves after an edit
	if d == nil {
		return nil
	}
	c.mu.Lock()
	c.songs[d.SongId] = d
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// CaughtUp marks the catalog as having read the topic to its end (Follow's
// caughtUp).
func (c *Catalog) CaughtUp() { c.once.Do(func() { close(c.ready) }) }

// Get returns a song's current description; false when it is not known.
// The description is shared: do not modify it.
func (c *Catalog) Get(id string) (*eventsv1.SongDescription, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.songs[id]
	return d, ok
}

// Wait returns a song's description, waiting up to wait for it to become
// known: an event that names a song can arrive before the song's own event
// has been read. Errors: a plain error after wait, or ctx's.
func (c *Catalog) Wait(ctx context.Context, id string, wait time.Duration) (*eventsv1.SongDescription, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		d, ok := c.songs[id]
		changed := c.changed
		c.mu.Unlock()
		if ok {
			return d, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("song %s is not known after %s", id, wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Lookup is Get for a caller's request: NotFound for an unknown song once
// the catalog caught up, Unavailable while it is still reading the topic.
func (c *Catalog) Lookup(id string) (*eventsv1.SongDescription, error) {
	if d, ok := c.Get(id); ok {
		return d, nil
	}
	select {
	case <-c.ready:
		return nil, apperr.New(apperr.NotFound, "song %s is not registered", id)
	default:
		return nil, apperr.New(apperr.Unavailable, "still reading the song catalog; song %s is not known yet, try again", id)
	}
}

// Payment is one payee wallet's part of an amount split by a song's splits.
type Payment struct {
	Account string
	Units   int64
}

// Payments splits total minor units of asset over splits with
// money.Allocate (the one split function) and returns one wallet per
// distinct payee whose part is not zero, in split order. Errors: no splits,
// splits that do not sum to 1,000,000 ppm, a payee whose wallet id the
// ledger's scheme refuses, or a negative total.
func Payments(splits []*eventsv1.Split, asset string, total int64) ([]Payment, error) {
	if len(splits) == 0 {
		return nil, fmt.Errorf("no royalty splits")
	}
	shares := make([]money.Share, len(splits))
	var sum uint64
	for i, s := range splits {
		shares[i] = money.Share{Payee: s.GetPayeeId(), Weight: uint64(s.GetSharePpm())}
		sum += uint64(s.GetSharePpm())
	}
	if sum != 1_000_000 {
		return nil, fmt.Errorf("splits sum to %d ppm, want 1000000", sum)
	}
	parts, err := money.Allocate(total, shares)
	if err != nil {
		return nil, err
	}
	var out []Payment
	index := map[string]int{}
	for i, sh := range shares {
		w := accounts.WalletID(sh.Payee, asset)
		if _, err := accounts.ParseAccountID(w); err != nil {
			return nil, fmt.Errorf("payee account: %w", err)
		}
		if j, ok := index[w]; ok {
			out[j].Units += parts[i]
			continue
		}
		index[w] = len(out)
		out = append(out, Payment{Account: w, Units: parts[i]})
	}
	kept := out[:0]
	for _, p := range out {
		if p.Units > 0 {
			kept = append(kept, p)
		}
	}
	return kept, nil
}
