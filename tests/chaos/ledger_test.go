package chaos

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const chaosWallets = 50

func chaosWallet(i int) string { return domain.WalletID(fmt.Sprint("c", i), "USD") }

// The accounts process: the service with its Kafka consumer, until killed.
func runAccounts() {
	ctx := untilSignal()
	store := mustStore()
	pk, _, _ := ed25519.GenerateKey(nil)
	svc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers(), IdentityKey: pk, ConsumerSessionTimeout: 6 * time.Second, ConsumerInstanceID: "accounts-0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		os.Exit(3)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	for i := 0; i < chaosWallets; i++ {
		if _, err := svc.App.Books["USD"].Open(ctx, chaosWallet(i)); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(3)
		}
	}
	if err := <-done; err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		os.Exit(3)
	}
}

// TestKill9AccountsWhileTransfersFlow: sagas' transfer requests flow over
// Kafka while the accounts process is killed with SIGKILL twice. Every
// request ends with exactly one outcome, balances sum to zero, no wallet is
// negative, and a book rebuilt from the log matches one recovered from
// snapshot plus tail.
func TestKill9AccountsWhileTransfersFlow(t *testing.T) {
	srv, broker, ctx, env := infra(t)
	client, store, fwdErr := forwarding(t, ctx, srv.URL(), broker.Brokers())

	request := func(id, debit, credit string, amount int64) eventstore.Pending {
		r := domain.Request{ID: id, Asset: "USD", Kind: domain.KindTip, RequestedBy: "chaos",
			Postings: []domain.Posting{{Debit: debit, Credit: credit, Amount: amount}}}
		return eventstore.Pending{Message: adapters.RequestToEvent(&r)}
	}
	// Funding first (it needs the wallets open: wait for the first batch).
	acc := start(t, "accounts", env)
	book := func() int64 { // revision of book-USD
		rs, err := client.ReadStream(ctx, adapters.BookStream("USD"), esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		if err != nil {
			return -1
		}
		defer rs.Close()
		ev, err := rs.Recv()
		if err != nil {
			return -1
		}
		return int64(ev.OriginalEvent().EventNumber)
	}
	for book() < 0 {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	var funding []eventstore.Pending
	for i := 0; i < chaosWallets; i++ {
		funding = append(funding, request(fmt.Sprint("fund-", i), "external:bank", chaosWallet(i), 10_000))
	}
	if _, err := store.Append(ctx, "chaossaga-fund", esdb.Any{}, funding...); err != nil {
		t.Fatal(err)
	}

	// Transfers in many saga streams, some too big to be paid, while the
	// accounts process is killed twice.
	rng := rand.New(rand.NewSource(7))
	const transfers = 6000
	ids := []string{}
	for i := 0; i < chaosWallets; i++ {
		ids = append(ids, fmt.Sprint("fund-", i))
	}
	sent := 0
	sendSome := func(n int) {
		for k := 0; k < n; k += 20 {
			var batch []eventstore.Pending
			for j := 0; j < 20 && sent < transfers; j++ {
				from, to := rng.Intn(chaosWallets), rng.Intn(chaosWallets)
				if from == to {
					to = (to + 1) % chaosWallets
				}
				id := fmt.Sprint("tr-", sent)
				batch = append(batch, request(id, chaosWallet(from), chaosWallet(to), int64(1+rng.Intn(3000))))
				ids = append(ids, id)
				sent++
			}
			if len(batch) == 0 {
				return
			}
			if _, err := store.Append(ctx, fmt.Sprint("chaossaga-", sent%16), esdb.Any{}, batch...); err != nil {
				t.Fatal(err)
			}
		}
	}
	sendSome(1500)
	time.Sleep(300 * time.Millisecond)
	acc.kill9(t)
	sendSome(1500)
	acc = start(t, "accounts", env)
	sendSome(1500)
	time.Sleep(700 * time.Millisecond)
	acc.kill9(t)
	acc = start(t, "accounts", env)
	sendSome(1500)

	// Wait until every request has a decision in the book's log.
	decided := map[string]int{}
	fresh, _ := domain.NewBook("USD", domain.DefaultPolicy())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		decided = map[string]int{}
		fresh, _ = domain.NewBook("USD", domain.DefaultPolicy())
		_, err := store.ReadStream(ctx, adapters.BookStream("USD"), 0, func(e eventstore.Event) error {
			b := e.Message.(*eventsv1.BookBatchAppended)
			for _, en := range b.Entries {
				if d := en.GetDecision(); d != nil {
					decided[d.Request.TransactionId]++
				}
			}
			return adapters.Replay(fresh, b)
		})
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, id := range ids {
			if decided[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		select {
		case err := <-fwdErr:
			t.Fatalf("the forwarder stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			diagnose(t, ctx, client, broker.Brokers())
			t.Fatalf("%d of %d requests have no outcome", missing, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
	committed := 0
	for _, id := range ids {
		if decided[id] != 1 {
			t.Fatalf("request %s has %d outcomes, want exactly 1", id, decided[id])
		}
	}
	var sum int64
	for _, a := range fresh.Accounts() {
		sum += a.Total
		if a.Kind == domain.AccountWallet && a.Total < 0 {
			t.Fatalf("wallet %s is at %d", a.ID, a.Total)
		}
	}
	if sum != 0 {
		t.Fatalf("balances sum to %d", sum)
	}
	committed = int(fresh.Sequence())
	if bal, _ := fresh.Balance("external:bank"); bal.Total != -chaosWallets*10_000 {
		t.Fatalf("external:bank at %d, want %d", bal.Total, -chaosWallets*10_000)
	}

	// The book the (restarted) service recovered agrees with the full replay.
	acc.kill9(t)
	w, err := adapters.OpenBookWriter(ctx, store, "USD", domain.DefaultPolicy(), adapters.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var recovered []byte
	w.Read(func(b *domain.Book) error { recovered = b.LedgerSnapshot(); return nil })
	if !bytes.Equal(recovered, fresh.LedgerSnapshot()) {
		t.Fatal("snapshot+tail recovery differs from a full replay of the log")
	}
	t.Logf("%d requests, each with exactly one outcome (%d committed), across 2 kills of the accounts process", len(ids), committed)
}

func diagnose(t *testing.T, ctx context.Context, client *esdb.Client, brokers []string) {
	rs, err := client.ReadStream(ctx, "checkpoint-forwarder", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err == nil {
		if ev, err := rs.Recv(); err == nil {
			t.Logf("forwarder checkpoint: %s (rev %d)", ev.OriginalEvent().Data, ev.OriginalEvent().EventNumber)
		}
		rs.Close()
	}
	rs, err = client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err == nil {
		if ev, err := rs.Recv(); err == nil {
			t.Logf("$all head: %d %s", ev.OriginalEvent().Position.Commit, ev.OriginalEvent().StreamID)
		}
		rs.Close()
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "fanfare.accounts.v1")
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	t.Logf("fanfare.accounts.v1 end offsets total %d (%v)", total, err)
	offs, err := adm.FetchOffsets(ctx, "accounts-ledger-requests")
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	t.Logf("group committed total %d (%v)", committed, err)
	groups, err := adm.DescribeGroups(ctx, "accounts-ledger-requests")
	for _, g := range groups {
		t.Logf("group state %s members %d (%v)", g.State, len(g.Members), err)
	}
}

// forwarding connects to the event store and runs the forwarder to the
// broker until ctx ends; its error comes on the channel.
func forwarding(t *testing.T, ctx context.Context, esURL string, brokers []string) (*esdb.Client, *eventstore.Store, <-chan error) {
	client, err := eventstore.Connect(esURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	store := eventstore.NewStore(client)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	fwdErr := make(chan error, 1)
	go func() { fwdErr <- forwarder.Run(ctx, forwarder.Config{Store: store, Publisher: pub}) }()
	return client, store, fwdErr
}
