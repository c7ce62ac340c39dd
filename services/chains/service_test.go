package chains_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	chainsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/chains"
	"github.com/fanfare/fanfare/services/chains/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

var code = servicetest.Code

// A purchase's token, extended offline by two distributors, is resolved
// from the PurchaseRequested event over Kafka: nearest first, once, and
// bad tokens are rejected with their reason.
func TestPurchasesResolveOverKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	brokers := servicetest.Bus(t, store)

	_, idKey, _ := ed25519.GenerateKey(nil)
	_, svcKey, _ := ed25519.GenerateKey(nil)
	svc, err := chains.New(chains.Config{Store: store, Brokers: brokers, IdentityKey: idKey.Public().(ed25519.PublicKey), SigningKey: svcKey,
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	url, stop := servicetest.Serve(t, svc)
	as := func(id string) chainsv1connect.ChainsServiceClient {
		return chainsv1connect.NewChainsServiceClient(http.DefaultClient, url, connect.WithInterceptors(identity.CallAs(idKey, identity.Identity{ID: id})))
	}

	song := uuid.NewString()
	alice, bob := as("alice"), as("bob")
	_, aliceKey, _ := ed25519.GenerateKey(nil)
	_, bobKey, _ := ed25519.GenerateKey(nil)
	for _, d := range []struct {
		c   chainsv1connect.ChainsServiceClient
		key ed25519.PrivateKey
	}{{alice, aliceKey}, {bob, bobKey}} {
		r, err := d.c.RegisterDistributorKey(ctx, connect.NewRequest(&chainsv1.RegisterDistributorKeyRequest{PublicKey: d.key.Public().(ed25519.PublicKey)}))
		if err != nil || !r.Msg.Registered {
			t.Fatalf("register key: %v %v", r, err)
		}
		again, err := d.c.RegisterDistributorKey(ctx, connect.NewRequest(&chainsv1.RegisterDistributorKeyRequest{PublicKey: d.key.Public().(ed25519.PublicKey)}))
		if err != nil || again.Msg.Registered {
			t.Fatalf("same key again: %v %v", again, err)
		}
	}
	_, other, _ := ed25519.GenerateKey(nil)
	if _, err := bob.RegisterDistributorKey(ctx, connect.NewRequest(&chainsv1.RegisterDistributorKeyRequest{PublicKey: other.Public().(ed25519.PublicKey)})); code(err) != connect.CodeAlreadyExists {
		t.Fatalf("a second key replaced the first: %v", err)
	}
	if _, err := bob.RegisterDistributorKey(ctx, connect.NewRequest(&chainsv1.RegisterDistributorKeyRequest{PublicKey: []byte("short")})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("a 5-byte key: %v", err)
	}

	root, err := alice.IssueReferral(ctx, connect.NewRequest(&chainsv1.IssueReferralRequest{RequestId: "r1", SongId: song}))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := alice.IssueReferral(ctx, connect.NewRequest(&chainsv1.IssueReferralRequest{RequestId: "r1", SongId: song})); err != nil || again.Msg.Token != root.Msg.Token {
		t.Fatalf("repeated issue: %v %v", again, err)
	}
	if _, err := alice.IssueReferral(ctx, connect.NewRequest(&chainsv1.IssueReferralRequest{RequestId: "r1", SongId: uuid.NewString()})); code(err) != connect.CodeAlreadyExists {
		t.Fatalf("request id reused for another song: %v", err)
	}
	if _, err := alice.IssueReferral(ctx, connect.NewRequest(&chainsv1.IssueReferralRequest{RequestId: "r2", SongId: "not-a-guid"})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad song id: %v", err)
	}
	keys, err := alice.GetServiceKeys(ctx, connect.NewRequest(&chainsv1.GetServiceKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	box, err := sealbox.PublicKey(keys.Msg.BoxKey)
	if err != nil {
		t.Fatal(err)
	}
	// Offline: alice passes her root to bob, who extends it and passes it
	// to carol, the purchaser.
	tok, _ := domain.ParseTokenText(root.Msg.Token)
	tok, err = domain.Extend(tok, song, "bob", bobKey, domain.PublicKeys{Box: box})
	if err != nil {
		t.Fatal(err)
	}

	request := func(purchase string, token []byte, songID string) {
		t.Helper()
		e := &eventsv1.PurchaseRequested{PurchaseId: purchase, SongId: songID, PurchaserId: "carol",
			Price: &eventsv1.Money{Asset: "USD", Units: 99}, ReferralToken: token}
		if _, err := store.Append(ctx, "purchase-"+purchase, esdb.Any{}, eventstore.Pending{Message: e}); err != nil {
			t.Fatal(err)
		}
	}
	tampered := append([]byte(nil), tok...)
	tampered[len(tampered)-3] ^= 1
	request("p1", tok, song)
	request("p1", tok, song) // redelivered request: still one answer
	request("p2", tampered, song)
	request("p3", tok, uuid.NewString())
	request("p4", nil, song)

	answers := map[string][]proto.Message{}
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range []string{"p1", "p2", "p3", "p4"} {
		for {
			var got []proto.Message
			if _, err := store.ReadStream(ctx, "purchasechain-"+p, 0, func(e eventstore.Event) error { got = append(got, e.Message); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 {
				answers[p] = got
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("purchase %s not answered", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // a duplicate answer would land by now
	for p := range answers {
		var n int
		if _, err := store.ReadStream(ctx, "purchasechain-"+p, 0, func(eventstore.Event) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("purchase %s has %d answers (%v)", p, n, err)
		}
	}
	if r, ok := answers["p1"][0].(*eventsv1.DistributorChainResolved); !ok || len(r.DistributorIds) != 2 || r.DistributorIds[0] != "bob" || r.DistributorIds[1] != "alice" {
		t.Fatalf("p1: %v", answers["p1"][0])
	}
	if r, ok := answers["p2"][0].(*eventsv1.DistributorChainRejected); !ok || r.Reason != eventsv1.DistributorChainRejected_REASON_MALFORMED {
		t.Fatalf("p2 (tampered): %v", answers["p2"][0])
	}
	if r, ok := answers["p3"][0].(*eventsv1.DistributorChainRejected); !ok || r.Reason != eventsv1.DistributorChainRejected_REASON_SONG_MISMATCH {
		t.Fatalf("p3 (other song): %v", answers["p3"][0])
	}
	if r, ok := answers["p4"][0].(*eventsv1.DistributorChainResolved); !ok || len(r.DistributorIds) != 0 {
		t.Fatalf("p4 (no token): %v", answers["p4"][0])
	}
	stop()
}
