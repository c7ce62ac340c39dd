package songs_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
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
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	"github.com/fanfare/fanfare/services/songs"
	"github.com/fanfare/fanfare/services/songs/domain"
	"github.com/google/uuid"
)

type harness struct {
	t       *testing.T
	idKey   ed25519.PrivateKey
	regKey  ed25519.PrivateKey
	store   *eventstore.Store
	brokers []string
	svc     *songs.Service
	url     string
	stop    func()
}

// newHarness starts the service on a fresh store; withKafka also forwards
// the store's events to a broker the service consumes from.
func newHarness(t *testing.T, withKafka bool) *harness {
	_, idKey, _ := ed25519.GenerateKey(nil)
	_, regKey, _ := ed25519.GenerateKey(nil)
	h := &harness{t: t, idKey: idKey, regKey: regKey, store: eventstore.NewStore(estest.Connect(t))}
	if withKafka {
		h.brokers = servicetest.Bus(t, h.store)
	}
	h.start()
	return h
}

// start (re)starts the service on the harness's store.
func (h *harness) start() {
	h.t.Helper()
	svc, err := songs.New(context.Background(), songs.Config{Store: h.store, Brokers: h.brokers, IdentityKey: h.idKey.Public().(ed25519.PublicKey),
		SigningKey: h.regKey, Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
	h.url, h.stop = servicetest.Serve(h.t, svc)
}

func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) as(id string, roles ...string) songsv1connect.SongsServiceClient {
	return songsv1connect.NewSongsServiceClient(http.DefaultClient, h.url,
		connect.WithInterceptors(identity.CallAs(h.idKey, identity.Identity{ID: id, Roles: roles})))
}

var (
	ctx  = servicetest.Ctx
	code = servicetest.Code
)

// fingerprint is a synthetic Chromaprint fingerprint of n items.
func fingerprint(seed uint64, n int) []uint32 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.Uint32()
	}
	return out
}

// noisy flips one bit in every item: still "agreeing" items by the rule.
func noisy(items []uint32, seed uint64) []uint32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]uint32, len(items))
	for i, v := range items {
		out[i] = v ^ 1<<r.IntN(32)
	}
	return out
}

func raw(items []uint32) string {
	parts := make([]string, len(items))
	for i, v := range items {
		parts[i] = fmt.Sprint(v)
	}
	return "FINGERPRINT=" + strings.Join(parts, ",")
}

func hash(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func desc(title, content string, fp []uint32) *songsv1.Description {
	return &songsv1.Description{
		Title: title, Artists: []string{"The Testers"}, Album: "Proofs", Genre: "Ambient", Year: 2026, DurationMs: 180_000,
		Format: "audio/mpeg", ContentHash: hash(content), Fingerprint: domain.CompressFingerprint(1, fp),
		Splits: []*songsv1.Split{{PayeeId: "artist-1", Percent: "66.6667"}, {PayeeId: "charity", Percent: "33.3333"}},
		Price:  "0.99", CopyrightHolder: "The Testers",
		DistributorPolicy: &songsv1.DistributorPolicy{Mode: "percent", Payer: "holder", Percent: []string{"10", "5"}},
	}
}

func register(t *testing.T, c songsv1connect.SongsServiceClient, reqID string, d *songsv1.Description) *songsv1.RegisterSongResponse {
	t.Helper()
	r, err := c.RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: reqID, Description: d, DownloadLocation: "https://cdn.example/" + reqID}))
	if err != nil {
		t.Fatalf("register %s: %v", reqID, err)
	}
	return r.Msg
}

// streamLen is the number of events in a song's stream (-1: none).
func (h *harness) streamLen(id string) int64 {
	last, err := h.store.ReadStream(ctx(h.t), songs.Category+"-"+id, 0, func(eventstore.Event) error { return nil })
	if err != nil {
		h.t.Fatal(err)
	}
	return last + 1
}

func TestRegisterSignCopyDisputeAndSearch(t *testing.T) {
	h := newHarness(t, false)
	artist := h.as("artist-1", identity.RoleArtist)
	fp := fingerprint(1, 400)
	first := register(t, artist, "r1", desc("Quiet Morning", "content-1", fp))
	if first.Outcome != songsv1.Outcome_OUTCOME_REGISTERED || first.Version != 1 {
		t.Fatalf("first registration: %v", first)
	}

	// Read back: the description round-trips, exact to the ppm and cent.
	got, err := artist.GetSong(ctx(t), connect.NewRequest(&songsv1.GetSongRequest{SongId: first.SongId}))
	if err != nil {
		t.Fatal(err)
	}
	s := got.Msg.Song
	if s.Status != "registered" || s.ArtistId != "artist-1" || s.Description.Price != "0.99" || s.Description.Splits[0].Percent != "66.6667" ||
		s.Description.Splits[1].Percent != "33.3333" || s.Description.DistributorPolicy.Percent[1] != "5.0000" || s.Copies != 1 {
		t.Fatalf("song read back: %v", s)
	}
	if items, err := domain.ParseFingerprint(s.Description.Fingerprint); err != nil || fmt.Sprint(items) != fmt.Sprint(fp) {
		t.Fatalf("fingerprint read back differs (%v)", err)
	}

	// The signature verifies offline with the registrar's public key, and
	// not for altered bytes.
	keys, err := artist.GetRegistrarKeys(ctx(t), connect.NewRequest(&songsv1.GetRegistrarKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := artist.GetSignedDescription(ctx(t), connect.NewRequest(&songsv1.GetSignedDescriptionRequest{SongId: first.SongId}))
	if err != nil {
		t.Fatal(err)
	}
	pub := ed25519.PublicKey(keys.Msg.SigningKey)
	if !pub.Equal(h.regKey.Public()) {
		t.Fatal("GetRegistrarKeys does not give the registrar's key")
	}
	if err := domain.VerifyCanonical(pub, signed.Msg.Canonical, signed.Msg.Signature); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if !strings.Contains(string(signed.Msg.Canonical), `title: "Quiet Morning"`) {
		t.Fatalf("canonical bytes do not show the title:\n%s", signed.Msg.Canonical)
	}
	altered := []byte(strings.Replace(string(signed.Msg.Canonical), "Quiet Morning", "Quiet Mourning", 1))
	if err := domain.VerifyCanonical(pub, altered, signed.Msg.Signature); !errors.Is(err, domain.ErrBadSignature) {
		t.Fatalf("altered description verified: %v", err)
	}

	// A repeat returns the first outcome and appends nothing; the same id
	// with other content is refused.
	before := h.streamLen(first.SongId)
	again := register(t, artist, "r1", desc("Quiet Morning", "content-1", fp))
	if again.SongId != first.SongId || again.Outcome != first.Outcome || h.streamLen(first.SongId) != before {
		t.Fatalf("repeat: %v, stream %d → %d events", again, before, h.streamLen(first.SongId))
	}
	_, err = artist.RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: "r1",
		Description: desc("Loud Morning", "content-1", fp), DownloadLocation: "https://cdn.example/r1"}))
	if code(err) != connect.CodeAlreadyExists {
		t.Fatalf("reused request id with other content: %v", err)
	}

	// Identical content from another artist joins the song as a copy.
	other := h.as("artist-2", identity.RoleArtist)
	cp := register(t, other, "c1", desc("Quiet Morning (upload)", "content-1", fingerprint(99, 400)))
	if cp.Outcome != songsv1.Outcome_OUTCOME_COPY || cp.SongId != first.SongId {
		t.Fatalf("copy: %v", cp)
	}
	if again := register(t, other, "c1", desc("Quiet Morning (upload)", "content-1", fingerprint(99, 400))); again.Outcome != songsv1.Outcome_OUTCOME_COPY || h.streamLen(first.SongId) != before+1 {
		t.Fatalf("repeated copy: %v, %d events", again, h.streamLen(first.SongId))
	}

	// A re-encode (other bytes, near-identical fingerprint) is held.
	held := register(t, other, "d1", desc("Quiet Morning (remaster)", "content-2", noisy(fp, 7)))
	if held.Outcome != songsv1.Outcome_OUTCOME_DISPUTED || held.MatchedSongId != first.SongId || held.Similarity != "1.0000" {
		t.Fatalf("near-duplicate: %v", held)
	}
	// A different song is not.
	storm := desc("Evening Storm", "content-3", fingerprint(2, 400))
	storm.Fingerprint = raw(fingerprint(2, 400)) // fpcalc -raw form
	fresh := register(t, other, "n1", storm)
	if fresh.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
		t.Fatalf("different song: %v", fresh)
	}

	// Moderators see and decide disputes; others may not.
	if _, err := other.ListDisputes(ctx(t), connect.NewRequest(&songsv1.ListDisputesRequest{})); code(err) != connect.CodePermissionDenied {
		t.Fatalf("non-moderator listed disputes: %v", err)
	}
	mod := h.as("mod-1", identity.RoleModerator)
	ds, err := mod.ListDisputes(ctx(t), connect.NewRequest(&songsv1.ListDisputesRequest{}))
	if err != nil || len(ds.Msg.Disputes) != 1 || ds.Msg.Disputes[0].Song.SongId != held.SongId || ds.Msg.Disputes[0].MatchedSongId != first.SongId {
		t.Fatalf("disputes: %v %v", ds, err)
	}
	// While held it is not searchable.
	if n := search(t, artist, "remaster", ""); len(n) != 0 {
		t.Fatalf("a held registration was found by search: %v", n)
	}
	if _, err := mod.ResolveDispute(ctx(t), connect.NewRequest(&songsv1.ResolveDisputeRequest{SongId: held.SongId, Decision: "maybe"})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad decision: %v", err)
	}
	res, err := mod.ResolveDispute(ctx(t), connect.NewRequest(&songsv1.ResolveDisputeRequest{SongId: held.SongId, Decision: "dismiss", Note: "a different take"}))
	if err != nil || res.Msg.Status != "registered" || res.Msg.SongId != held.SongId {
		t.Fatalf("dismiss: %v %v", res, err)
	}
	if _, err := mod.ResolveDispute(ctx(t), connect.NewRequest(&songsv1.ResolveDisputeRequest{SongId: held.SongId, Decision: "assign"})); code(err) != connect.CodeAlreadyExists {
		t.Fatalf("second decision on a closed dispute: %v", err)
	}
	// A second near-duplicate is assigned to the song it matched.
	held2 := register(t, other, "d2", desc("Quiet Morning (live)", "content-4", noisy(fp, 8)))
	if held2.Outcome != songsv1.Outcome_OUTCOME_DISPUTED {
		t.Fatalf("second near-duplicate: %v", held2)
	}
	res, err = mod.ResolveDispute(ctx(t), connect.NewRequest(&songsv1.ResolveDisputeRequest{SongId: held2.SongId, Decision: "assign"}))
	if err != nil || res.Msg.Status != "assigned" || res.Msg.SongId != held2.MatchedSongId {
		t.Fatalf("assign: %v %v", res, err)
	}

	// Search by words and field, paged.
	if n := search(t, artist, "quiet morning", "title"); len(n) != 2 || !slices.Contains(n, first.SongId) || !slices.Contains(n, held.SongId) {
		t.Fatalf("title search: %v, want the song and the dismissed remaster", n)
	}
	if n := search(t, artist, "live", ""); len(n) != 0 {
		t.Fatalf("an assigned registration is searchable: %v", n)
	}
	if n := search(t, artist, "testers", "artist"); len(n) != 3 {
		t.Fatalf("artist search found %v, want the 3 registered songs", n)
	}
	if n := search(t, artist, "testers", "genre"); len(n) != 0 {
		t.Fatalf("genre search for an artist word: %v", n)
	}
	page1, err := artist.SearchSongs(ctx(t), connect.NewRequest(&songsv1.SearchSongsRequest{Query: "ambient", PageSize: 2}))
	if err != nil || len(page1.Msg.Songs) != 2 || page1.Msg.NextPageToken == "" {
		t.Fatalf("page 1: %v %v", page1, err)
	}
	page2, err := artist.SearchSongs(ctx(t), connect.NewRequest(&songsv1.SearchSongsRequest{Query: "ambient", PageSize: 2, PageToken: page1.Msg.NextPageToken}))
	if err != nil || len(page2.Msg.Songs) != 1 || page2.Msg.NextPageToken != "" {
		t.Fatalf("page 2: %v %v", page2, err)
	}

	// A restarted registrar rebuilds all of it from the log.
	h.restart()
	artist = h.as("artist-1", identity.RoleArtist)
	if n := search(t, artist, "testers", "artist"); len(n) != 3 {
		t.Fatalf("after restart, artist search: %v", n)
	}
	if again := register(t, artist, "r1", desc("Quiet Morning", "content-1", fp)); again.SongId != first.SongId || again.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
		t.Fatalf("after restart, repeat: %v", again)
	}
	if d3 := register(t, h.as("artist-3", identity.RoleArtist), "d3", desc("Quiet Morning (again)", "content-5", noisy(fp, 9))); d3.Outcome != songsv1.Outcome_OUTCOME_DISPUTED || d3.MatchedSongId == "" {
		t.Fatalf("after restart, conflict check: %v", d3)
	}
	if cp := register(t, h.as("artist-3", identity.RoleArtist), "c3", desc("x", "content-3", fingerprint(3, 400))); cp.Outcome != songsv1.Outcome_OUTCOME_COPY || cp.SongId != fresh.SongId {
		t.Fatalf("after restart, copy check: %v", cp)
	}
}

func search(t *testing.T, c songsv1connect.SongsServiceClient, q, field string) []string {
	t.Helper()
	r, err := c.SearchSongs(ctx(t), connect.NewRequest(&songsv1.SearchSongsRequest{Query: q, Field: field}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range r.Msg.Songs {
		ids = append(ids, s.SongId)
	}
	return ids
}

func TestBadRegistrationsChangeNothing(t *testing.T) {
	h := newHarness(t, false)
	artist := h.as("artist-1", identity.RoleArtist)
	fp := fingerprint(5, 300)
	cases := []struct {
		name   string
		mutate func(*songsv1.Description)
		want   string
	}{
		{"splits short of 100%", func(d *songsv1.Description) { d.Splits[1].Percent = "23.3333" }, "sum to 90"},
		{"splits over 100%", func(d *songsv1.Description) { d.Splits[1].Percent = "43.3333" }, "sum to 110"},
		{"split with 5 decimals", func(d *songsv1.Description) { d.Splits[1].Percent = "33.33333" }, "at most 4 decimals"},
		{"negative split", func(d *songsv1.Description) { d.Splits[1].Percent = "-33.3333" }, "positive decimal"},
		{"payee twice", func(d *songsv1.Description) { d.Splits[1].PayeeId = "artist-1" }, "appears twice"},
		{"no splits", func(d *songsv1.Description) { d.Splits = nil }, "splits are empty"},
		{"zero duration", func(d *songsv1.Description) { d.DurationMs = 0 }, "duration must be positive"},
		{"price with 3 decimals", func(d *songsv1.Description) { d.Price = "0.999" }, "price"},
		{"negative price", func(d *songsv1.Description) { d.Price = "-1" }, "price"},
		{"price in an unknown asset", func(d *songsv1.Description) { d.PriceAsset = "EUR" }, "price"},
		{"empty title", func(d *songsv1.Description) { d.Title = " " }, "title is empty"},
		{"bad content hash", func(d *songsv1.Description) { d.ContentHash = "abc" }, "content_hash"},
		{"garbage fingerprint", func(d *songsv1.Description) { d.Fingerprint = "not a fingerprint!" }, "fingerprint"},
		{"no fingerprint", func(d *songsv1.Description) { d.Fingerprint = "" }, "fingerprint is required"},
		{"policy over the price", func(d *songsv1.Description) { d.DistributorPolicy.Percent = []string{"60", "50"} }, "exceed 100"},
		{"policy without a price", func(d *songsv1.Description) { d.Price = "" }, "needs a price"},
		{"unknown policy mode", func(d *songsv1.Description) { d.DistributorPolicy.Mode = "pyramid" }, "mode"},
	}
	for i, c := range cases {
		d := desc("Bad", fmt.Sprint("bad-", i), fp)
		c.mutate(d)
		_, err := artist.RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: fmt.Sprint("bad-", i), Description: d, DownloadLocation: "x"}))
		if code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want InvalidArgument mentioning %q", c.name, err, c.want)
		}
	}
	// Not an artist, no request id, no location.
	if _, err := h.as("listener-1").RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: "x", Description: desc("A", "a", fp), DownloadLocation: "x"})); code(err) != connect.CodePermissionDenied {
		t.Errorf("listener registered a song: %v", err)
	}
	if _, err := artist.RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{Description: desc("A", "a", fp), DownloadLocation: "x"})); code(err) != connect.CodeInvalidArgument {
		t.Errorf("no request id: %v", err)
	}
	if _, err := artist.RegisterSong(ctx(t), connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: "y", Description: desc("A", "a", fp)})); code(err) != connect.CodeInvalidArgument {
		t.Errorf("no location: %v", err)
	}
	// Nothing was registered: the fingerprint is still free and search is empty.
	if n := search(t, artist, "", ""); len(n) != 0 {
		t.Fatalf("rejected registrations left songs: %v", n)
	}
	if ok := register(t, artist, "good", desc("Good", "good", fp)); ok.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
		t.Fatalf("the fingerprint of rejected registrations is taken: %v", ok)
	}
}

func TestUpdateSongKeepsVersions(t *testing.T) {
	h := newHarness(t, false)
	artist := h.as("artist-1", identity.RoleArtist)
	r := register(t, artist, "r1", desc("Draft", "c", fingerprint(11, 300)))
	d2 := desc("Final", "c", fingerprint(11, 300))
	d2.Splits = []*songsv1.Split{{PayeeId: "artist-1", Percent: "100"}}
	up, err := artist.UpdateSong(ctx(t), connect.NewRequest(&songsv1.UpdateSongRequest{SongId: r.SongId, RequestId: "e1", Description: d2}))
	if err != nil || up.Msg.Version != 2 {
		t.Fatalf("update: %v %v", up, err)
	}
	again, err := artist.UpdateSong(ctx(t), connect.NewRequest(&songsv1.UpdateSongRequest{SongId: r.SongId, RequestId: "e1", Description: d2}))
	if err != nil || again.Msg.Version != 2 || h.streamLen(r.SongId) != 2 {
		t.Fatalf("repeated update: %v %v, %d events", again, err, h.streamLen(r.SongId))
	}
	if _, err := h.as("artist-2", identity.RoleArtist).UpdateSong(ctx(t), connect.NewRequest(&songsv1.UpdateSongRequest{SongId: r.SongId, RequestId: "e2", Description: d2})); code(err) != connect.CodePermissionDenied {
		t.Fatalf("another artist edited the song: %v", err)
	}
	if _, err := artist.UpdateSong(ctx(t), connect.NewRequest(&songsv1.UpdateSongRequest{SongId: uuid.NewString(), RequestId: "e3", Description: d2})); code(err) != connect.CodeNotFound {
		t.Fatalf("edit of an unknown song: %v", err)
	}
	v1, err := artist.GetSong(ctx(t), connect.NewRequest(&songsv1.GetSongRequest{SongId: r.SongId, Version: 1}))
	if err != nil || v1.Msg.Song.Description.Title != "Draft" || len(v1.Msg.Song.Description.Splits) != 2 {
		t.Fatalf("version 1: %v %v", v1, err)
	}
	cur, err := artist.GetSong(ctx(t), connect.NewRequest(&songsv1.GetSongRequest{SongId: r.SongId}))
	if err != nil || cur.Msg.Song.Version != 2 || cur.Msg.Song.Description.Title != "Final" || cur.Msg.Song.Description.Splits[0].Percent != "100.0000" {
		t.Fatalf("current: %v %v", cur, err)
	}
	for v := uint64(1); v <= 2; v++ {
		s, err := artist.GetSignedDescription(ctx(t), connect.NewRequest(&songsv1.GetSignedDescriptionRequest{SongId: r.SongId, Version: v}))
		if err != nil || domain.VerifyCanonical(h.regKey.Public().(ed25519.PublicKey), s.Msg.Canonical, s.Msg.Signature) != nil ||
			!strings.Contains(string(s.Msg.Canonical), fmt.Sprintf("version: %d\n", v)) {
			t.Fatalf("signed version %d: %v", v, err)
		}
	}
	if _, err := artist.GetSong(ctx(t), connect.NewRequest(&songsv1.GetSongRequest{SongId: r.SongId, Version: 3})); code(err) != connect.CodeNotFound {
		t.Fatalf("version 3: %v", err)
	}
	if n := search(t, artist, "final", "title"); len(n) != 1 {
		t.Fatalf("search by the new title: %v", n)
	}
	if n := search(t, artist, "draft", "title"); len(n) != 0 {
		t.Fatalf("search still finds the old title: %v", n)
	}
}

// The location stays sealed until a PurchaseCompleted (or a campaign's
// success) arrives over Kafka from the event log.
func TestLocationRevealedAfterPurchaseOverKafka(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := newHarness(t, true)

	artist := h.as("artist-1", identity.RoleArtist)
	sold := register(t, artist, "s1", desc("For Sale", "sale", fingerprint(21, 300)))
	shard := register(t, artist, "s2", desc("Shard", "shard", fingerprint(22, 300)))
	buyer := h.as("fan-1")
	for _, id := range []string{sold.SongId, shard.SongId} {
		if _, err := buyer.GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: id})); code(err) != connect.CodePermissionDenied {
			t.Fatalf("sealed location of %s revealed before payment: %v", id, err)
		}
	}
	if loc, err := artist.GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: sold.SongId})); err != nil || loc.Msg.Location != "https://cdn.example/s1" {
		t.Fatalf("the artist's own location: %v %v", loc, err)
	}

	buyerBox := sealbox.Derive(h.idKey, "test buyer")
	completed := &eventsv1.PurchaseCompleted{PurchaseId: "p1", SongId: sold.SongId, PurchaserId: "fan-1",
		Price: &eventsv1.Money{Asset: "USD", Units: 99}, TransactionId: "p1", PurchaserPublicKey: buyerBox.Public[:]}
	// Delivered twice (a producer retry): revealed once.
	for i := 0; i < 2; i++ {
		if _, err := h.store.Append(c, "purchase-p1", esdb.Any{}, eventstore.Pending{Message: completed}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.store.Append(c, "campaign-k1", esdb.Any{}, eventstore.Pending{Message: &eventsv1.CampaignSucceeded{
		CampaignId: "k1", Total: &eventsv1.Money{Asset: "USD", Units: 100000}, Pledges: 3, SongIds: []string{shard.SongId}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := buyer.GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: sold.SongId}))
		return err == nil
	})
	loc, err := buyer.GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: sold.SongId}))
	if err != nil || loc.Msg.Location != "https://cdn.example/s1" || loc.Msg.Reason != "purchase" {
		t.Fatalf("purchaser's location: %v %v", loc, err)
	}
	if _, err := h.as("fan-2").GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: sold.SongId})); code(err) != connect.CodePermissionDenied {
		t.Fatalf("another fan got the purchased location: %v", err)
	}
	waitFor(t, func() bool {
		_, err := h.as("anyone").GetDownloadLocation(ctx(t), connect.NewRequest(&songsv1.GetDownloadLocationRequest{SongId: shard.SongId}))
		return err == nil
	})

	// The log holds the reveal once, sealed to the purchaser's key only.
	time.Sleep(500 * time.Millisecond) // let a redelivery land if it were to
	var reveals []*eventsv1.LocationRevealed
	if _, err := h.store.ReadStream(c, songs.Category+"-"+sold.SongId, 0, func(e eventstore.Event) error {
		if r, ok := e.Message.(*eventsv1.LocationRevealed); ok {
			reveals = append(reveals, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(reveals) != 1 {
		t.Fatalf("%d LocationRevealed events, want 1", len(reveals))
	}
	opened, err := buyerBox.Open(reveals[0].SealedLocation)
	if err != nil || string(opened) != "https://cdn.example/s1" || strings.Contains(string(reveals[0].SealedLocation), "cdn.example") {
		t.Fatalf("sealed reveal: %q %v", opened, err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
