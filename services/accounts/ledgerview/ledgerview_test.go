package ledgerview_test

import (
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
)

func decision(committed bool, postings ...*eventsv1.Posting) *eventsv1.BookBatchAppended_Entry {
	return moved(committed, postings, postings)
}

// moved is a decision whose request asked for requested and which moved
// committed (a hold capture moves money the request names no posting for).
func moved(committed bool, requested, committedPostings []*eventsv1.Posting) *eventsv1.BookBatchAppended_Entry {
	d := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{Postings: requested}}
	if committed {
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{Postings: committedPostings}}
	} else {
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{}}
	}
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Decision{Decision: d}}
}

func TestBalancesCountCommittedPostingsOfTheirBook(t *testing.T) {
	b := ledgerview.NewBalances("FAN")
	b.Apply(&eventsv1.BookBatchAppended{Asset: "FAN", Entries: []*eventsv1.BookBatchAppended_Entry{
		decision(true, &eventsv1.Posting{Debit: "mint", Credit: "wallet:a:FAN", Amount: 300}),
		decision(false, &eventsv1.Posting{Debit: "mint", Credit: "wallet:a:FAN", Amount: 999}),
		decision(true, &eventsv1.Posting{Debit: "wallet:a:FAN", Credit: "burn", Amount: 100}),
		// A hold captured from a to b: no requested posting, one moved.
		moved(true, nil, []*eventsv1.Posting{{Debit: "wallet:a:FAN", Credit: "wallet:b:FAN", Amount: 50}}),
	}})
	b.Apply(&eventsv1.BookBatchAppended{Asset: "USD", Entries: []*eventsv1.BookBatchAppended_Entry{
		decision(true, &eventsv1.Posting{Debit: "external:bank", Credit: "wallet:a:FAN", Amount: 5}),
	}})
	if got := b.Get("wallet:a:FAN"); got != 150 {
		t.Fatalf("wallet:a:FAN = %d, want 150 (rejections and other books do not count, captures do)", got)
	}
	if got := b.Get("wallet:b:FAN"); got != 50 {
		t.Fatalf("wallet:b:FAN = %d, want the 50 captured", got)
	}
	if b.Get("mint")+b.Get("burn")+b.Get("wallet:a:FAN")+b.Get("wallet:b:FAN") != 0 {
		t.Fatal("the view's balances do not sum to zero")
	}
}
