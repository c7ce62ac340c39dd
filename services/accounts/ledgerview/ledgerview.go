// Package ledgerview is the accounts service's published read model for
// other services: balances rebuilt from the books' BookBatchAppended events
// as they arrive over Kafka. It never calls the ledger; the ledger stays
// the authority on every decision, and a view may lag it.
package ledgerview

import (
	"sync"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// Balances are committed balances of one book (holds are not subtracted).
type Balances struct {
	asset string
	mu    sync.RWMutex
	total map[string]int64
}

// NewBalances follows the book of asset.
func NewBalances(asset string) *Balances {
	return &Balances{asset: asset, total: map[string]int64{}}
}

// Apply takes a batch of the book in (other books are ignored). Batches
// must come in the book's order, each once: read the topic from its start.
func (b *Balances) Apply(e *eventsv1.BookBatchAppended) {
	if e.Asset != b.asset {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, en := range e.Entries {
		// The committed postings, not the request's: they include what
		// hold captures paid out.
		for _, p := range en.GetDecision().GetCommitted().GetPostings() {
			b.total[p.Debit] -= p.Amount
			b.total[p.Credit] += p.Amount
		}
	}
}

// Get is an account's committed balance as far as the view has seen.
func (b *Balances) Get(account string) int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.total[account]
}
