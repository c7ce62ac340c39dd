// Package ledgerview is the accounts service's published read model for
// other services: balances rebuilt from the books' BookBatchAppended events
// as they arrive over Kafka. It never calls the ledger; the ledger stays
// the authority on every decision, and a view may lag it.
package ledgerview

import (
	"sync"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
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
	Moved(e, func(p *eventsv1.Posting, _ eventsv1.PostingKind, _ *eventsv1.LedgerTransactionCommitted) {
		b.total[p.Debit] -= p.Amount
		b.total[p.Credit] += p.Amount
	})
}

// Moved calls fn, in order, for every posting a batch's committed
// decisions moved: the committed postings, not the requested ones, so what
// hold captures paid out is included. kind is the posting's own, or its
// request's when it has none.
func Moved(b *eventsv1.BookBatchAppended, fn func(p *eventsv1.Posting, kind eventsv1.PostingKind, c *eventsv1.LedgerTransactionCommitted)) {
	for _, en := range b.Entries {
		d := en.GetDecision()
		c := d.GetCommitted()
		for _, p := range c.GetPostings() {
			k := p.Kind
			if k == eventsv1.PostingKind_POSTING_KIND_UNSPECIFIED {
				k = d.GetRequest().GetKind()
			}
			fn(p, k, c)
		}
	}
}

// Get is an account's committed balance as far as the view has seen.
func (b *Balances) Get(account string) int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.total[account]
}

// DebitOwner is the owner of the first account a request's postings debit
// that is of kind (and, for escrows, of purpose): the identity of a
// wallet, the ref of an escrow; "" if none is.
func DebitOwner(r *eventsv1.LedgerTransactionRequested, kind accounts.AccountKind, purpose string) string {
	for _, p := range r.GetPostings() {
		if id, err := accounts.ParseAccountID(p.Debit); err == nil && id.Kind == kind && id.Purpose == purpose {
			return id.Owner
		}
	}
	return ""
}
