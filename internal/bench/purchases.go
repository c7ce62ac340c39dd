package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/fanfare/fanfare/sagas/referral"
	refdomain "github.com/fanfare/fanfare/sagas/referral/domain"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/chains"
	chdomain "github.com/fanfare/fanfare/services/chains/domain"
	"github.com/fanfare/fanfare/services/tipping"
	"github.com/google/uuid"
)

func init() { register("purchases", purchasesScenario) }

// The purchases scenario's shape.
const (
	purchaseHops         = 4    // layers of every referral token, root included
	purchaseSongs        = 50   // songs on sale, one 4-hop chain each
	purchaseDistributors = 200  // distributor pool; each chain has 4 distinct ones
	purchaseListeners    = 2000 // purchasers
	purchaseClients      = 32   // concurrent Purchase callers (8: 174/s, 16: 200/s, 32: ~260/s, 64: 233/s on an idle 2-core VM)
	purchasePrice        = 199  // USD minor units
	purchaseFunds        = 1_000_000
)

// purchasesScenario measures purchases per second end to end, and their
// latency, with 4-hop referral chains (DESIGN §6, Purchase). Everything
// runs in this process on one embedded event store and Kafka broker: the
// accounts service (USD book), the chains service, the referral saga and
// the tipping service, whose Connect API is served over HTTP on loopback.
// Songs are registered by appending SongRegistered events (priced 1.99 USD,
// three payees, percent fees 10/5/2.5/1% paid by the purchaser); each song
// has one root token, issued by the chains service and extended offline by
// three more distributors. purchaseClients callers then buy back to back
// for o.Duration, each Purchase waiting for the outcome: tipping appends
// PurchaseRequested → forwarder → Kafka → chains (resolve the 4 layers) and
// the saga → saga plans one ledger transaction → Kafka → accounts (book
// commit) → Kafka → saga records the payout → Kafka → tipping completes the
// purchase and answers. A latency is request sent → COMPLETED answer. At
// the end the USD book must sum to zero and every wallet must have moved
// by exactly what the completed purchases pay. The issue sets no floor.
func purchasesScenario(ctx context.Context, o Options) (*Result, error) {
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	st, err := startStack(ctx, "purchases")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	brokers := st.broker.Brokers()

	// Songs first, so the services' catalogs find them as they start.
	songIDs := make([]string, purchaseSongs)
	descs := make([]*eventsv1.SongDescription, purchaseSongs)
	payeeIDs := map[string]bool{}
	for i := range songIDs {
		songIDs[i] = uuid.NewString()
		artist := fmt.Sprintf("artist-%02d", i)
		payees := []string{artist, fmt.Sprintf("producer-%02d", i), fmt.Sprintf("writer-%02d", i)}
		for _, p := range payees {
			payeeIDs[p] = true
		}
		descs[i] = &eventsv1.SongDescription{SongId: songIDs[i], Title: fmt.Sprint("Song ", i), ArtistId: artist, DurationMs: 180_000,
			Splits: []*eventsv1.Split{{PayeeId: payees[0], SharePpm: 333_333}, {PayeeId: payees[1], SharePpm: 333_333}, {PayeeId: payees[2], SharePpm: 333_334}},
			Price:  &eventsv1.Money{Asset: "USD", Units: purchasePrice},
			DistributorPolicy: &eventsv1.DistributorPolicy{Mode: eventsv1.DistributorPolicy_MODE_PERCENT, Payer: eventsv1.DistributorPolicy_PAYER_PURCHASER,
				PercentPpm: []uint32{100_000, 50_000, 25_000, 10_000}}}
		if _, err := st.store.Append(ctx, "song-"+songIDs[i], esdb.Any{}, eventstore.Pending{Message: &eventsv1.SongRegistered{Version: 1, Description: descs[i]}}); err != nil {
			return nil, err
		}
	}

	idKey := namedKey("bench purchases identity")
	idPub := idKey.Public().(ed25519.PublicKey)
	chainsKey := namedKey("bench purchases chains")
	errs := make(chan error, 4)
	running := func(name string, run func(context.Context) error) {
		go func() {
			if err := run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			} else if ctx.Err() == nil {
				errs <- fmt.Errorf("%s stopped", name)
			}
		}()
	}
	acc, err := accounts.New(ctx, accounts.Config{Store: st.store, Brokers: brokers, IdentityKey: idPub})
	if err != nil {
		return nil, err
	}
	running("accounts", acc.Run)
	ch, err := chains.New(chains.Config{Store: st.store, Brokers: brokers, IdentityKey: idPub, SigningKey: chainsKey})
	if err != nil {
		return nil, err
	}
	running("chains", ch.Run)
	saga, err := referral.New(referral.Config{Store: st.store, Brokers: brokers})
	if err != nil {
		return nil, err
	}
	running("referral saga", saga.Run)
	tip, err := tipping.New(ctx, tipping.Config{Store: st.store, Brokers: brokers, IdentityKey: idPub})
	if err != nil {
		return nil, err
	}
	running("tipping", tip.Run)
	url, stopServing, err := serve(tip.Handler())
	if err != nil {
		return nil, err
	}
	defer stopServing()

	// Wallets: every payee and distributor is opened (credits to unopened
	// wallets are refused), every listener is funded.
	book := acc.App.Books["USD"]
	distIDs := make([]string, purchaseDistributors)
	for i := range distIDs {
		distIDs[i] = fmt.Sprintf("distributor-%03d", i)
	}
	var opens []string
	for p := range payeeIDs {
		opens = append(opens, accdomain.WalletID(p, "USD"))
	}
	for _, d := range distIDs {
		opens = append(opens, accdomain.WalletID(d, "USD"))
	}
	listeners := make([]string, purchaseListeners)
	for i := range listeners {
		listeners[i] = fmt.Sprintf("listener-%04d", i)
		opens = append(opens, accdomain.WalletID(listeners[i], "USD"))
	}
	o.Log("purchases: opening %d wallets, funding %d listeners", len(opens), len(listeners))
	if err := parallel(ctx, 64, len(opens), func(i int) error {
		_, err := book.Open(ctx, opens[i])
		return err
	}); err != nil {
		return nil, fmt.Errorf("open wallets: %w", err)
	}
	deposits := make([]accdomain.Request, len(listeners))
	for i, l := range listeners {
		deposits[i] = accdomain.Request{ID: "fund-" + l, Asset: "USD", Kind: accdomain.KindDeposit, RequestedBy: "bench",
			Postings: []accdomain.Posting{{Debit: accdomain.ExternalID("bank"), Credit: accdomain.WalletID(l, "USD"), Amount: purchaseFunds}}}
	}
	outs, err := book.ApplyAll(ctx, deposits)
	if err != nil {
		return nil, fmt.Errorf("fund listeners: %w", err)
	}
	for i, out := range outs {
		if !out.Committed() {
			return nil, fmt.Errorf("fund %s: %v", listeners[i], out.Err)
		}
	}

	// Distributors register their keys; each song gets a root issued to
	// its first distributor, extended offline by three more.
	distKeys := make(map[string]ed25519.PrivateKey, len(distIDs))
	for _, d := range distIDs {
		distKeys[d] = namedKey("bench purchases " + d)
	}
	if err := parallel(ctx, 16, len(distIDs), func(i int) error {
		as := identity.With(ctx, identity.Identity{ID: distIDs[i]})
		_, _, err := ch.App.RegisterDistributorKey(as, distKeys[distIDs[i]].Public().(ed25519.PublicKey))
		return err
	}); err != nil {
		return nil, fmt.Errorf("register distributor keys: %w", err)
	}
	service := ch.App.Keys.Public()
	tokens := make([]string, purchaseSongs)
	chainOf := make([][]string, purchaseSongs) // nearest the purchaser first
	lookup := func(id string) (ed25519.PublicKey, bool) {
		k, ok := distKeys[id]
		if !ok {
			return nil, false
		}
		return k.Public().(ed25519.PublicKey), true
	}
	for s := range songIDs {
		var ds []string
		for h := 0; h < purchaseHops; h++ {
			ds = append(ds, distIDs[(s*purchaseHops+h)%len(distIDs)])
		}
		_, tok, err := ch.App.IssueReferral(identity.With(ctx, identity.Identity{ID: ds[0]}), "bench-root-"+songIDs[s], songIDs[s])
		if err != nil {
			return nil, fmt.Errorf("issue root: %w", err)
		}
		for _, d := range ds[1:] {
			if tok, err = chdomain.Extend(tok, songIDs[s], d, distKeys[d], chdomain.PublicKeys{Box: service.Box}); err != nil {
				return nil, fmt.Errorf("extend: %w", err)
			}
		}
		c, err := chdomain.Resolve(tok, songIDs[s], "nobody", ch.App.Keys, lookup, 0)
		if err != nil || len(c.Raw) != purchaseHops || len(c.Distributors) != purchaseHops {
			return nil, fmt.Errorf("token of song %d resolves to %v (%v), want %d distinct hops", s, c.Distributors, err, purchaseHops)
		}
		tokens[s] = chdomain.EncodeToken(tok)
		chainOf[s] = c.Distributors
	}
	o.Log("purchases: %d songs, one %d-hop token each (%d characters)", purchaseSongs, purchaseHops, len(tokens[0]))

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: purchaseClients * 2}}
	clients := make([]tippingv1connect.TippingServiceClient, len(listeners))
	for i, l := range listeners {
		clients[i] = tippingv1connect.NewTippingServiceClient(httpc, url, connect.WithInterceptors(identity.CallAs(idKey, identity.Identity{ID: l})))
	}
	before := usdBalances(book)

	// What each completed purchase is (for the money check at the end).
	type bought struct{ listener, song int }
	var mu sync.Mutex
	var done []bought
	buy := func(c context.Context, listener, song int, reqID string) (*tippingv1.Purchase, error) {
		r, err := clients[listener].Purchase(c, connect.NewRequest(&tippingv1.PurchaseRequest{RequestId: reqID, SongId: songIDs[song],
			ReferralToken: tokens[song], WaitMs: 30_000}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Purchase, nil
	}

	// Warm-up: one purchase per song, retried until the catalogs know the
	// songs and every consumer group is running.
	o.Log("purchases: warming up (one purchase per song)")
	warmStart := time.Now()
	if err := parallel(ctx, purchaseSongs, purchaseSongs, func(s int) error {
		reqID := uuid.NewString()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			p, err := buy(ctx, s, s, reqID)
			if err == nil && p.Status == tippingv1.Status_STATUS_COMPLETED {
				mu.Lock()
				done = append(done, bought{s, s})
				mu.Unlock()
				return nil
			}
			switch code := connect.CodeOf(err); {
			case err == nil && p.Status == tippingv1.Status_STATUS_PENDING:
				// Not paid yet (consumer groups still joining): ask again.
			case err == nil:
				return fmt.Errorf("warm-up purchase of song %d: %v %s %s", s, p.Status, p.FailureReason, p.Detail)
			case code == connect.CodeNotFound || code == connect.CodeUnavailable || code == connect.CodeFailedPrecondition:
				reqID = uuid.NewString() // refused at the door: nothing recorded
			default:
				return fmt.Errorf("warm-up purchase of song %d: %w", s, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("warm-up purchase of song %d not completed within 2m: %v", s, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-errs:
				errs <- err // for the other warm-up buyers
				return err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}); err != nil {
		return nil, err
	}
	o.Log("purchases: warm in %s", time.Since(warmStart).Round(time.Millisecond))

	// Timed: purchaseClients callers buy back to back.
	o.Log("purchases: %d clients buying for %s", purchaseClients, o.Duration)
	var next atomic.Int64
	var failed atomic.Int64
	var failures []string
	type call struct {
		id   string
		sent time.Time
		took time.Duration
	}
	var calls []call
	lat := make([][]time.Duration, purchaseClients)
	deadline := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < purchaseClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				n := int(next.Add(1)) + purchaseSongs // the warm-up used listeners 0..songs-1
				listener, song := n%purchaseListeners, n%purchaseSongs
				t0 := time.Now()
				p, err := buy(ctx, listener, song, uuid.NewString())
				d := time.Since(t0)
				if err == nil && p.Status != tippingv1.Status_STATUS_COMPLETED {
					err = fmt.Errorf("purchase %s: %v %s %s", p.PurchaseId, p.Status, p.FailureReason, p.Detail)
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 5 {
						failures = append(failures, fmt.Sprintf("%s buying song %d: %v", listeners[listener], song, err))
					}
					mu.Unlock()
					continue
				}
				lat[c] = append(lat[c], d)
				mu.Lock()
				done = append(done, bought{listener, song})
				calls = append(calls, call{p.PurchaseId, t0, d})
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sortDurations(all)
	completed := len(all)
	rate := float64(completed) / elapsed.Seconds()
	o.Log("purchases: %d completed, %d failed in %s = %.1f/s; latency p50 %.1f ms p95 %.1f ms p99 %.1f ms max %.1f ms",
		completed, failed.Load(), elapsed.Round(time.Millisecond), rate, percentileMS(all, 0.5), percentileMS(all, 0.95), percentileMS(all, 0.99), percentileMS(all, 1))

	// Where the time went: completions in each second (a stall shows as a
	// dip), and the timeline of a sample of purchases.
	perSec := make([]int, int(elapsed/time.Second)+1)
	for _, c := range calls {
		if sec := int(c.sent.Add(c.took).Sub(start) / time.Second); sec < len(perSec) {
			perSec[sec]++
		}
	}
	full := perSec[:min(len(perSec), int(o.Duration/time.Second))] // whole seconds within the run
	o.Log("purchases: completed per second: %v", perSec)
	// Each purchase's events, as offsets from its request being sent; the
	// ledger's commit is the book batch that decided its transaction.
	committed := map[string]time.Time{}
	st.store.ReadStream(ctx, adapters.BookStream("USD"), 0, func(e eventstore.Event) error {
		if b, ok := e.Message.(*eventsv1.BookBatchAppended); ok {
			for _, en := range b.Entries {
				if id := en.GetDecision().GetRequest().GetTransactionId(); id != "" {
					committed[id] = e.Envelope.OccurredAt
				}
			}
		}
		return nil
	})
	stages := func(c call) map[string]float64 {
		out := map[string]float64{}
		if t, ok := committed[c.id]; ok {
			out["BookBatchAppended"] = float64(t.Sub(c.sent).Microseconds()) / 1000
		}
		for _, stream := range []string{"purchase-" + c.id, "purchasechain-" + c.id, referral.Category + "-" + c.id} {
			st.store.ReadStream(ctx, stream, 0, func(e eventstore.Event) error {
				name := e.Envelope.Type[strings.LastIndex(e.Envelope.Type, ".")+1:]
				out[name] = float64(e.Envelope.OccurredAt.Sub(c.sent).Microseconds()) / 1000
				return nil
			})
		}
		return out
	}
	byOffset := func(m map[string]float64) []string {
		var names []string
		for n := range m {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return m[names[i]] < m[names[j]] })
		return names
	}
	timeline := map[string]float64{}
	if len(calls) > 0 {
		samples := map[string][]float64{}
		step := max(1, len(calls)/100)
		for i := 0; i < len(calls); i += step {
			for n, v := range stages(calls[i]) {
				samples[n] = append(samples[n], v)
			}
		}
		for n, v := range samples {
			sort.Float64s(v)
			timeline[n] = v[len(v)/2]
		}
		o.Log("purchases: median timeline of %d sampled purchases (ms after the request was sent):", (len(calls)+step-1)/step)
		for _, n := range byOffset(timeline) {
			o.Log("  %7.1f  %s", timeline[n], n)
		}
		slowest := calls[0]
		for _, c := range calls {
			if c.took > slowest.took {
				slowest = c
			}
		}
		o.Log("purchases: the slowest purchase (%s, sent at +%s):", slowest.took.Round(time.Millisecond), slowest.sent.Sub(start).Round(time.Millisecond))
		sl := stages(slowest)
		for _, n := range byOffset(sl) {
			o.Log("  %7.1f  %s", sl[n], n)
		}
	}

	res := &Result{Scenario: "purchases", Pass: true, Floors: map[string]any{"purchases.per_sec": "none (the issue sets no floor)",
		"purchases.p99_ms": "none (the issue sets no floor)"}, Figures: map[string]any{
		"purchases": map[string]any{"completed": completed, "failed": failed.Load(), "per_sec": round1(rate),
			"p50_ms": percentileMS(all, 0.50), "p95_ms": percentileMS(all, 0.95), "p99_ms": percentileMS(all, 0.99), "max_ms": percentileMS(all, 1),
			"clients": purchaseClients, "seconds": round1(elapsed.Seconds()), "slowest_second": worstSecond(full)},
		"hops": purchaseHops, "songs": purchaseSongs, "listeners": purchaseListeners, "distributors": purchaseDistributors,
		"timeline_p50_ms": timeline,
		"warm_up":         map[string]any{"purchases": purchaseSongs, "seconds": round1(start.Sub(warmStart).Seconds())},
		"path":            "Purchase RPC → tipping append → forwarder → Kafka → chains resolve + referral saga → ledger request → Kafka → accounts USD book → Kafka → saga payout → Kafka → tipping COMPLETED",
	}}
	if completed == 0 {
		res.Pass = false
		res.Failures = append(res.Failures, "no purchase completed in the timed phase")
	}
	if n := failed.Load(); n > 0 {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("%d purchases failed; first: %v", n, failures))
	}

	// Money: the book sums to zero and every wallet moved by exactly what
	// the completed purchases pay (warm-up included).
	want := map[string]int64{}
	var charged, paidOut int64
	mu.Lock()
	for _, b := range done {
		pay, fail, err := refdomain.Plan(refdomain.Purchase{PurchaseID: "bench", SongID: songIDs[b.song], PurchaserID: listeners[b.listener],
			Asset: "USD", Price: purchasePrice}, descs[b.song], chainOf[b.song])
		if err != nil || fail != nil {
			mu.Unlock()
			return nil, fmt.Errorf("plan: %v %v", fail, err)
		}
		for _, p := range pay.Postings {
			want[p.Debit] -= p.Amount
			want[p.Credit] += p.Amount
		}
	}
	mu.Unlock()
	after := usdBalances(book)
	var sum int64
	var wrong []string
	for id, bal := range after {
		sum += bal
		delta := bal - before[id]
		if delta != want[id] {
			wrong = append(wrong, fmt.Sprintf("%s moved %d, want %d", id, delta, want[id]))
		}
		if delta < 0 {
			charged -= delta
		} else {
			paidOut += delta
		}
	}
	for id, w := range want {
		if _, ok := after[id]; !ok && w != 0 {
			wrong = append(wrong, fmt.Sprintf("%s is not in the book, want %d", id, w))
		}
	}
	sort.Strings(wrong)
	var wantCharged int64
	for _, w := range want {
		if w < 0 {
			wantCharged -= w
		}
	}
	res.Figures["money"] = map[string]any{"purchases_checked": len(done), "book_sum": sum, "purchasers_debited": charged,
		"payees_and_distributors_credited": paidOut, "expected_debited": wantCharged, "wallets_wrong": len(wrong)}
	if sum != 0 {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("USD book balances sum to %d, not zero", sum))
	}
	if charged != paidOut || charged != wantCharged {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("purchasers debited %d, payees and distributors credited %d, expected %d", charged, paidOut, wantCharged))
	}
	if len(wrong) > 0 {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("%d wallets moved by other than the purchases pay; first: %v", len(wrong), wrong[:min(5, len(wrong))]))
	}
	o.Log("purchases: money: %d purchases, %d debited, %d credited, book sums to %d, %d wallets wrong", len(done), charged, paidOut, sum, len(wrong))
	return res, nil
}

// worstSecond is the fewest completions in any whole second of the run.
func worstSecond(perSec []int) int {
	if len(perSec) == 0 {
		return 0
	}
	return slices.Min(perSec)
}

// usdBalances are the totals of every account of a USD book.
func usdBalances(book *adapters.BookWriter) map[string]int64 {
	out := map[string]int64{}
	book.Read(func(b *accdomain.Book) error {
		for _, a := range b.Accounts() {
			out[a.ID] = a.Total
		}
		return nil
	})
	return out
}

// parallel runs fn(0..n-1) on at most workers goroutines; the first error
// stops the rest.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err; stop.Store(true) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// namedKey is an Ed25519 key derived from a name (benchmarks need no
// secrecy, and stable keys make runs comparable).
func namedKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}
