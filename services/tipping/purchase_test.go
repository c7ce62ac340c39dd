package tipping_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	chainsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/fanfare/fanfare/sagas/referral"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/chains"
	chainsdomain "github.com/fanfare/fanfare/services/chains/domain"
	"github.com/fanfare/fanfare/services/songs"
	songsdomain "github.com/fanfare/fanfare/services/songs/domain"
	"github.com/fanfare/fanfare/services/songs/songstest"
)

// A purchase over the whole real path: the songs service registers the
// song, the chains service issues a root that three more distributors
// extend offline and resolves it, the tipping service takes the purchase,
// the referral saga pays it in one ledger transaction, and the registrar
// reveals the location sealed to the purchaser. Every balance is checked
// to the cent; a repeated request pays once, a token with a loop and the
// purchaser in it pays each distributor once and never the purchaser, and
// a purchase that cannot be paid (funds, a tampered token) moves nothing.
func TestPurchaseThroughAFourHopChain(t *testing.T) {
	h := newHarness(t)
	h.start()
	sub := kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}
	idKey := h.key
	pub := idKey.Public().(ed25519.PublicKey)
	_, regKey, _ := ed25519.GenerateKey(nil)
	reg, err := songs.New(h.ctx, songs.Config{Store: h.store, Brokers: h.brokers, IdentityKey: pub, SigningKey: regKey, Subscriber: sub})
	if err != nil {
		t.Fatal(err)
	}
	songsURL, _ := servicetest.Serve(t, reg)
	_, chainsKey, _ := ed25519.GenerateKey(nil)
	ch, err := chains.New(chains.Config{Store: h.store, Brokers: h.brokers, IdentityKey: pub, SigningKey: chainsKey, Subscriber: sub})
	if err != nil {
		t.Fatal(err)
	}
	chainsURL, _ := servicetest.Serve(t, ch)
	saga, err := referral.New(referral.Config{Store: h.store, Brokers: h.brokers, Subscriber: sub})
	if err != nil {
		t.Fatal(err)
	}
	sagaCtx, stopSaga := context.WithCancel(h.ctx)
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- saga.Run(sagaCtx) }()
	t.Cleanup(func() {
		stopSaga()
		if err := <-sagaDone; err != nil {
			t.Errorf("referral saga: %v", err)
		}
	})
	songsAs := func(id string, roles ...string) songsv1connect.SongsServiceClient {
		return songsv1connect.NewSongsServiceClient(http.DefaultClient, songsURL, connect.WithInterceptors(identity.CallAs(idKey, identity.Identity{ID: id, Roles: roles})))
	}
	chainsAs := func(id string) chainsv1connect.ChainsServiceClient {
		return chainsv1connect.NewChainsServiceClient(http.DefaultClient, chainsURL, connect.WithInterceptors(identity.CallAs(idKey, identity.Identity{ID: id})))
	}

	// Payees and distributors hold 0.01 so their wallets are open.
	for _, id := range []string{"ava", "pb", "pc", "d1", "d2", "d3", "d4"} {
		accountstest.Fund(t, h.usd, accdomain.WalletID(id, "USD"), "open-"+id, 1)
	}
	accountstest.Fund(t, h.usd, accdomain.WalletID("lena", "USD"), "dep-lena", 1000)
	accountstest.Fund(t, h.usd, accdomain.WalletID("max", "USD"), "dep-max", 100)
	accountstest.Fund(t, h.usd, accdomain.WalletID("zoe", "USD"), "dep-zoe", 1000)

	registerSong := func(reqID string, price string, policy *songsv1.DistributorPolicy) string {
		t.Helper()
		sum := sha256.Sum256([]byte(reqID))
		d := &songsv1.Description{Title: "Song " + reqID, Artists: []string{"Ava"}, DurationMs: 180_000, Format: "audio/mpeg",
			ContentHash: hex.EncodeToString(sum[:]), Fingerprint: songsdomain.CompressFingerprint(1, songstest.Fingerprint(reqID)), CopyrightHolder: "Ava",
			Splits: []*songsv1.Split{{PayeeId: "ava", Percent: "33.3333"}, {PayeeId: "pb", Percent: "33.3333"}, {PayeeId: "pc", Percent: "33.3334"}},
			Price:  price, DistributorPolicy: policy}
		r, err := songsAs("ava", identity.RoleArtist).RegisterSong(h.ctx, connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: reqID, Description: d,
			DownloadLocation: "https://cdn.example/" + reqID}))
		if err != nil || r.Msg.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
			t.Fatalf("register %s: %v %v", reqID, r, err)
		}
		return r.Msg.SongId
	}
	song := registerSong("hit", "1.99", &songsv1.DistributorPolicy{Mode: "percent", Payer: "purchaser", Percent: []string{"10", "5", "2.5", "1"}})
	free := registerSong("demo", "", nil)

	// d1 gets the root; d2, d3 and d4 each extend the token offline.
	keys := map[string]ed25519.PrivateKey{}
	for _, d := range []string{"d1", "d2", "d3", "d4", "zoe"} {
		_, keys[d], _ = ed25519.GenerateKey(nil)
		if _, err := chainsAs(d).RegisterDistributorKey(h.ctx, connect.NewRequest(&chainsv1.RegisterDistributorKeyRequest{PublicKey: keys[d].Public().(ed25519.PublicKey)})); err != nil {
			t.Fatal(err)
		}
	}
	root, err := chainsAs("d1").IssueReferral(h.ctx, connect.NewRequest(&chainsv1.IssueReferralRequest{RequestId: "r1", SongId: song}))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := chainsAs("d1").GetServiceKeys(h.ctx, connect.NewRequest(&chainsv1.GetServiceKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	box, err := sealbox.PublicKey(sk.Msg.BoxKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := chainsdomain.ParseTokenText(root.Msg.Token)
	for _, d := range []string{"d2", "d3", "d4"} {
		if tok, err = chainsdomain.Extend(tok, song, d, keys[d], chainsdomain.PublicKeys{Box: box}); err != nil {
			t.Fatal(err)
		}
	}
	token := chainsdomain.EncodeToken(tok)

	lenaBox := sealbox.Derive(idKey, "lena's player")
	lena := h.as("lena")
	buy := func(c tippingv1connect.TippingServiceClient, reqID, songID, token string) (*tippingv1.Purchase, error) {
		var res *connect.Response[tippingv1.PurchaseResponse]
		var err error
		h.eventually("the catalog knows the song", func() error {
			res, err = c.Purchase(h.ctx, connect.NewRequest(&tippingv1.PurchaseRequest{RequestId: reqID, SongId: songID, ReferralToken: token,
				PurchaserPublicKey: lenaBox.Public[:], WaitMs: 30_000}))
			if servicetest.Code(err) == connect.CodeNotFound {
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return res.Msg.Purchase, nil
	}
	p, err := buy(lena, "buy-1", song, token)
	if err != nil || p.Status != tippingv1.Status_STATUS_COMPLETED || p.Price != "1.99" || p.TransactionId != p.PurchaseId {
		t.Fatalf("purchase: %v %v", p, err)
	}
	// Fees on top of 1.99 for the hops nearest first (d4, d3, d2, d1):
	// 10%, 5%, 2.5%, 1% = 19.9, 9.95, 4.975, 1.99 → largest remainder
	// 20, 10, 5, 2. The payees share 1.99: 66.33.., 66.33.., 66.33.. → 66, 66, 67.
	want := map[string]int64{"lena": 1000 - 199 - 37, "ava": 1 + 66, "pb": 1 + 66, "pc": 1 + 67, "d4": 1 + 20, "d3": 1 + 10, "d2": 1 + 5, "d1": 1 + 2,
		"max": 100, "zoe": 1000}
	h.wantBalances(want)

	// The same request again: the same purchase, nothing paid twice.
	again, err := buy(lena, "buy-1", song, token)
	if err != nil || again.PurchaseId != p.PurchaseId || again.Status != tippingv1.Status_STATUS_COMPLETED {
		t.Fatalf("repeat: %v %v", again, err)
	}
	h.wantBalances(want)

	// The registrar revealed the location to lena, sealed to her key.
	h.eventually("lena may download", func() error {
		loc, err := songsAs("lena").GetDownloadLocation(h.ctx, connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: song}))
		if err != nil {
			return err
		}
		if loc.Msg.Location != "https://cdn.example/hit" || loc.Msg.Reason != "purchase" {
			return fmt.Errorf("location %v", loc.Msg)
		}
		return nil
	})
	var sealed []byte
	if _, err := h.store.ReadStream(h.ctx, songs.Category+"-"+song, 0, func(e eventstore.Event) error {
		if r, ok := e.Message.(*eventsv1.LocationRevealed); ok {
			sealed = r.SealedLocation
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if opened, err := lenaBox.Open(sealed); err != nil || string(opened) != "https://cdn.example/hit" {
		t.Fatalf("sealed location: %q %v", opened, err)
	}

	// max cannot pay 1.99 + fees: failed whole, nothing moved.
	mx := h.as("max")
	mp, err := buy(mx, "buy-2", song, token)
	if err != nil || mp.Status != tippingv1.Status_STATUS_FAILED || mp.FailureReason != "insufficient_funds" {
		t.Fatalf("uncovered purchase: %v %v", mp, err)
	}
	h.wantBalances(want)
	// A tampered token: the chain is rejected and nothing is paid.
	bad := append([]byte(nil), tok...)
	bad[len(bad)-3] ^= 1
	tp, err := buy(lena, "buy-3", song, chainsdomain.EncodeToken(bad))
	if err != nil || tp.Status != tippingv1.Status_STATUS_FAILED || tp.FailureReason != "invalid_referral" {
		t.Fatalf("tampered token: %v %v", tp, err)
	}
	h.wantBalances(want)

	// A token that loops (d1 d2 d3 d2 d4, root first) and passes through
	// the purchaser (zoe, then d3): the chain is d4 d2 d1, each paid once,
	// zoe never. Fees 10%, 5%, 2.5% of 1.99 = 19.9, 9.95, 4.975 → 20, 10, 5.
	loop, _ := chainsdomain.ParseTokenText(root.Msg.Token)
	for _, d := range []string{"d2", "d3", "d2", "d4", "zoe", "d3"} {
		if loop, err = chainsdomain.Extend(loop, song, d, keys[d], chainsdomain.PublicKeys{Box: box}); err != nil {
			t.Fatal(err)
		}
	}
	zp, err := buy(h.as("zoe"), "zoe-1", song, chainsdomain.EncodeToken(loop))
	if err != nil || zp.Status != tippingv1.Status_STATUS_COMPLETED {
		t.Fatalf("looping token: %v %v", zp, err)
	}
	want["zoe"] -= 199 + 35
	want["ava"], want["pb"], want["pc"] = want["ava"]+66, want["pb"]+66, want["pc"]+67
	want["d4"], want["d2"], want["d1"] = want["d4"]+20, want["d2"]+10, want["d1"]+5
	h.wantBalances(want)

	// Refused at the door, nothing recorded: not for sale, a price the
	// purchaser did not agree to, a token that is not one, a reused id.
	for _, c := range []struct {
		req  *tippingv1.PurchaseRequest
		code connect.Code
		msg  string
	}{
		{&tippingv1.PurchaseRequest{RequestId: "n1", SongId: free}, connect.CodeFailedPrecondition, "not for sale"},
		{&tippingv1.PurchaseRequest{RequestId: "n2", SongId: song, ExpectedPrice: "0.99"}, connect.CodeFailedPrecondition, "costs 1.99 USD now"},
		{&tippingv1.PurchaseRequest{RequestId: "n3", SongId: song, ReferralToken: "%%%"}, connect.CodeInvalidArgument, "referral_token"},
		{&tippingv1.PurchaseRequest{RequestId: "n4", SongId: song, PurchaserPublicKey: []byte("short")}, connect.CodeInvalidArgument, "purchaser_public_key"},
		{&tippingv1.PurchaseRequest{RequestId: "buy-1", SongId: free}, connect.CodeFailedPrecondition, "not for sale"},
		{&tippingv1.PurchaseRequest{RequestId: "buy-1", SongId: song, ReferralToken: ""}, connect.CodeAlreadyExists, "already used"},
	} {
		_, err := lena.Purchase(h.ctx, connect.NewRequest(c.req))
		if servicetest.Code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v, want %v mentioning %q", c.req, err, c.code, c.msg)
		}
	}
	if _, err := mx.GetPurchase(h.ctx, connect.NewRequest(&tippingv1.GetPurchaseRequest{PurchaseId: p.PurchaseId})); servicetest.Code(err) != connect.CodeNotFound {
		t.Fatalf("another fan's purchase: %v", err)
	}
	h.wantBalances(want)
}
