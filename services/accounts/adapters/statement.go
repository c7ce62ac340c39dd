package adapters

import (
	"strconv"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"sync"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// StatementEntry is one movement on an account.
type StatementEntry struct {
	Sequence     uint64
	Transaction  string
	Amount       int64 // signed: + credits the account
	Balance      int64 // after this entry
	Counterparty string
	Kind         eventsv1.PostingKind
	Memo         string
}

// Statements is the read model behind ListStatement: every committed
// movement per account, in book order, with running balances. It is fed the
// book's batches (replayed at start, then live from the writer).
type Statements struct {
	mu      sync.RWMutex
	entries map[string][]StatementEntry
}

// NewStatements is an empty read model.
func NewStatements() *Statements { return &Statements{entries: map[string][]StatementEntry{}} }

// Apply folds one batch in.
func (s *Statements) Apply(b *eventsv1.BookBatchAppended) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range b.Entries {
		c := e.GetDecision().GetCommitted()
		if c == nil {
			continue
		}
		for _, p := range c.Postings {
			s.add(p.Debit, c, -p.Amount, p.Credit, p.Kind)
			s.add(p.Credit, c, p.Amount, p.Debit, p.Kind)
		}
	}
}

func (s *Statements) add(account string, c *eventsv1.LedgerTransactionCommitted, amount int64, other string, kind eventsv1.PostingKind) {
	list := s.entries[account]
	var bal int64
	if n := len(list); n > 0 {
		bal = list[n-1].Balance
	}
	s.entries[account] = append(list, StatementEntry{Sequence: c.Sequence, Transaction: c.TransactionId, Amount: amount,
		Balance: bal + amount, Counterparty: other, Kind: kind, Memo: c.Memo})
}

// Page returns up to size entries, newest first, older than the cursor
// (empty: the newest), and the cursor for the next page ("" at the end).
// A cursor is the count of entries before the page's first one, so pages
// stay stable while new entries arrive.
func (s *Statements) Page(account string, size int, cursor string) ([]StatementEntry, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.entries[account]
	end := len(list)
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 || n > len(list) {
			return nil, "", errBadCursor
		}
		end = n
	}
	start := max(0, end-size)
	out := make([]StatementEntry, 0, end-start)
	for i := end - 1; i >= start; i-- {
		out = append(out, list[i])
	}
	next := ""
	if start > 0 {
		next = strconv.Itoa(start)
	}
	return out, next, nil
}

var errBadCursor = apperr.New(apperr.InvalidInput, "page_token is not a cursor from a previous page")
