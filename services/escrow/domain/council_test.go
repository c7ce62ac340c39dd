package domain_test

import (
	"errors"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"google.golang.org/protobuf/proto"
)

const fan = 100_000_000

var (
	release = eventsv1.EscrowAction_ESCROW_ACTION_RELEASE
	forfeit = eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT
	rules   = domain.CouncilRules{Members: []string{"m1", "m2", "m3"}, Quorum: 2}
)

// replayed rebuilds a council from everything c recorded and checks it
// matches: the events alone carry the state.
func replayed(t *testing.T, c *domain.Council, log *[]proto.Message) {
	t.Helper()
	*log = append(*log, c.Flush()...)
	r := domain.NewCouncil(c.Artist)
	for _, e := range *log {
		if err := r.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	for id, p := range c.Proposals {
		q := r.Proposals[id]
		if q == nil || q.State != p.State || len(q.Approvals) != len(p.Approvals) || q.Amount != p.Amount {
			t.Fatalf("replay of %s: %+v, live %+v", id, q, p)
		}
	}
}

func kindIs(t *testing.T, err error, kind string, sentinel error) {
	t.Helper()
	if apperr.KindOf(err) != kind || !errors.Is(err, sentinel) {
		t.Fatalf("got %v (kind %q), want %s wrapping %v", err, apperr.KindOf(err), kind, sentinel)
	}
}

// The council's rules: a proposal needs the quorum of distinct members
// (the proposer counts once), the same moderator cannot approve twice, a
// non-member cannot act, a proposal for more than the escrow holds (less
// what authorized actions take) is refused both when proposed and when
// authorized, and a forfeit burns under the same threshold.
func TestCouncilRules(t *testing.T) {
	c := domain.NewCouncil("ava")
	var log []proto.Message
	balance := int64(10 * fan)

	if err := c.Propose("p1", release, 4*fan, "m1", "good year", balance, rules); err != nil {
		t.Fatal(err)
	}
	if c.Proposals["p1"].State != domain.Open {
		t.Fatalf("one approval of two authorized it: %+v", c.Proposals["p1"])
	}
	kindIs(t, c.Approve("p1", "m1", balance, rules), apperr.Conflict, domain.ErrAlreadyApproved)
	kindIs(t, c.Approve("p1", "mallory", balance, rules), apperr.PermissionDenied, domain.ErrNotMember)
	kindIs(t, c.Propose("px", release, fan, "mallory", "", balance, rules), apperr.PermissionDenied, domain.ErrNotMember)
	kindIs(t, c.Approve("nope", "m2", balance, rules), apperr.NotFound, domain.ErrNoProposal)
	replayed(t, c, &log)
	if len(log) != 1 {
		t.Fatalf("refusals recorded events: %v", log)
	}

	if err := c.Approve("p1", "m2", balance, rules); err != nil {
		t.Fatal(err)
	}
	evs := c.Flush()
	if len(evs) != 3 {
		t.Fatalf("approval at quorum: %v", evs)
	}
	req, ok := evs[2].(*eventsv1.LedgerTransactionRequested)
	if !ok || req.TransactionId != "p1" || req.Asset != "FAN" || req.RequestedBy != domain.RequestedBy || len(req.Postings) != 1 ||
		req.Postings[0].Debit != accounts.EscrowID("discovery", "ava", "FAN") || req.Postings[0].Credit != accounts.WalletID("ava", "FAN") ||
		req.Postings[0].Amount != 4*fan || req.Postings[0].Kind != eventsv1.PostingKind_POSTING_KIND_ESCROW_RELEASE {
		t.Fatalf("release request: %v", evs[2])
	}
	log = append(log, evs...)
	kindIs(t, c.Approve("p1", "m3", balance, rules), apperr.Forbidden, domain.ErrClosed)

	// 10 FAN held, 4 promised to p1: 7 is too much, at proposal...
	kindIs(t, c.Propose("p2", release, 7*fan, "m2", "", balance, rules), apperr.Forbidden, domain.ErrOverBalance)
	// ...and at authorization, when the balance fell meanwhile.
	if err := c.Propose("p2", release, 6*fan, "m2", "", balance, rules); err != nil {
		t.Fatal(err)
	}
	kindIs(t, c.Approve("p2", "m3", 9*fan, rules), apperr.Forbidden, domain.ErrOverBalance)
	if c.Proposals["p2"].State != domain.Open || len(c.Proposals["p2"].Approvals) != 1 {
		t.Fatalf("a refused approval changed p2: %+v", c.Proposals["p2"])
	}
	kindIs(t, c.Propose("p3", release, 0, "m1", "", balance, rules), apperr.InvalidInput, domain.ErrInvalidProposal)
	kindIs(t, c.Propose("p3", eventsv1.EscrowAction_ESCROW_ACTION_UNSPECIFIED, fan, "m1", "", balance, rules), apperr.InvalidInput, domain.ErrInvalidProposal)
	if err := c.Propose("p2", release, 6*fan, "m2", "", balance, rules); err != nil {
		t.Fatalf("a repeated proposal: %v", err)
	}
	if apperr.KindOf(c.Propose("p2", forfeit, 6*fan, "m2", "", balance, rules)) != apperr.Conflict {
		t.Fatal("a proposal id reused for another proposal was accepted")
	}
	replayed(t, c, &log)

	// The ledger commits p1: it is settled, and its 4 FAN are no longer
	// promised (the balance read from the ledger has them out).
	commit := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{TransactionId: "p1"},
		Outcome: &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: "p1", Sequence: 7}}}
	if err := c.Decide(commit); err != nil || c.Proposals["p1"].State != domain.Settled {
		t.Fatalf("decide: %v %+v", err, c.Proposals["p1"])
	}
	if err := c.Decide(commit); err != nil || len(c.Flush()) != 1 {
		t.Fatalf("a redelivered decision recorded again: %v", err)
	}
	log = append(log, &eventsv1.EscrowActionSettled{ProposalId: "p1", ArtistId: "ava", Action: release, Amount: &eventsv1.Money{Asset: "FAN", Units: 4 * fan}, Sequence: 7})
	balance = 6 * fan

	// A forfeit of all that is left, under the same threshold: it burns.
	if err := c.Propose("f1", forfeit, 6*fan, "m3", "fraud", balance, rules); err != nil {
		t.Fatal(err)
	}
	if err := c.Approve("f1", "m1", balance, rules); err != nil {
		t.Fatal(err)
	}
	evs = c.Flush()
	req = evs[len(evs)-1].(*eventsv1.LedgerTransactionRequested)
	if req.Postings[0].Credit != accounts.Burn || req.Postings[0].Kind != eventsv1.PostingKind_POSTING_KIND_ESCROW_FORFEIT || req.Postings[0].Amount != 6*fan {
		t.Fatalf("forfeit request: %v", req)
	}
	// p2 (6 FAN) can no longer be authorized: f1 promised everything.
	kindIs(t, c.Approve("p2", "m1", balance, rules), apperr.Forbidden, domain.ErrOverBalance)
	reject := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{TransactionId: "f1"},
		Outcome: &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{TransactionId: "f1",
			Reason: eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS}}}
	if err := c.Decide(reject); err != nil || c.Proposals["f1"].State != domain.Failed {
		t.Fatalf("rejected forfeit: %v %+v", err, c.Proposals["f1"])
	}
	// With f1 failed, p2 fits again and m1's approval authorizes it.
	if err := c.Approve("p2", "m1", balance, rules); err != nil || c.Proposals["p2"].State != domain.Authorized {
		t.Fatalf("p2 after f1 failed: %v %+v", err, c.Proposals["p2"])
	}

	// Any moderator when the policy names no members; a quorum of 1
	// authorizes at once.
	open := domain.NewCouncil("bo")
	if err := open.Propose("q1", release, fan, "anyone", "", fan, domain.CouncilRules{Quorum: 1}); err != nil || open.Proposals["q1"].State != domain.Authorized {
		t.Fatalf("quorum 1: %v %+v", err, open.Proposals["q1"])
	}
}

func TestCouncilRulesFromPolicy(t *testing.T) {
	if r, err := domain.CouncilRulesFromPolicy(nil); err != nil || r.Quorum != 2 || r.Members != nil {
		t.Fatalf("no rules: %+v %v", r, err)
	}
	r, err := domain.CouncilRulesFromPolicy(&eventsv1.EscrowRules{CouncilSize: 3, CouncilQuorum: 3, CouncilMembers: []string{"m1", "m2", "m3"}})
	if err != nil || r.Quorum != 3 || len(r.Members) != 3 {
		t.Fatalf("3 of 3: %+v %v", r, err)
	}
	_, err = domain.CouncilRulesFromPolicy(&eventsv1.EscrowRules{CouncilQuorum: 4, CouncilMembers: []string{"m1", "m2", "m3"}})
	kindIs(t, err, apperr.InvalidInput, domain.ErrInvalidProposal)
}
