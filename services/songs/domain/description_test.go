package domain_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
)

func validDescription() *eventsv1.SongDescription {
	fp := make([]uint32, 64)
	for i := range fp {
		fp[i] = uint32(i) * 2654435761
	}
	return &eventsv1.SongDescription{
		SongId: "0b6f2d6e-3c1a-4f5e-9a7b-1d2c3e4f5a6b", Title: "Song", ArtistId: "artist-1", DurationMs: 200_000,
		ContentHash: bytes.Repeat([]byte{1}, 32), Fingerprint: fp,
		Splits: []*eventsv1.Split{{PayeeId: "a", SharePpm: 333_333}, {PayeeId: "b", SharePpm: 333_333}, {PayeeId: "c", SharePpm: 333_334}},
		Price:  &eventsv1.Money{Asset: "USD", Units: 99},
		DistributorPolicy: &eventsv1.DistributorPolicy{Mode: eventsv1.DistributorPolicy_MODE_FIXED, Payer: eventsv1.DistributorPolicy_PAYER_HOLDER,
			FixedUnits: []int64{10, 5}},
	}
}

func TestValidateDescription(t *testing.T) {
	if err := domain.ValidateDescription(validDescription()); err != nil {
		t.Fatalf("a valid description: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*eventsv1.SongDescription)
		want   string
	}{
		{"not a GUID", func(d *eventsv1.SongDescription) { d.SongId = "song-1" }, "not a GUID"},
		{"splits short by 1 ppm", func(d *eventsv1.SongDescription) { d.Splits[2].SharePpm-- }, "sum to 99.9999%"},
		{"splits over by 1 ppm", func(d *eventsv1.SongDescription) { d.Splits[2].SharePpm++ }, "sum to 100.0001%"},
		{"zero share", func(d *eventsv1.SongDescription) { d.Splits[0].SharePpm = 0 }, "must be positive"},
		{"zero duration", func(d *eventsv1.SongDescription) { d.DurationMs = 0 }, "duration must be positive"},
		{"zero price", func(d *eventsv1.SongDescription) { d.Price.Units = 0 }, "price must be positive"},
		{"short hash", func(d *eventsv1.SongDescription) { d.ContentHash = d.ContentHash[:31] }, "SHA-256"},
		{"short fingerprint", func(d *eventsv1.SongDescription) { d.Fingerprint = d.Fingerprint[:3] }, "fingerprint has 3 items"},
		{"fixed fees over the price", func(d *eventsv1.SongDescription) { d.DistributorPolicy.FixedUnits = []int64{90, 10} }, "exceed the price"},
		{"no payer", func(d *eventsv1.SongDescription) { d.DistributorPolicy.Payer = 0 }, "needs a payer"},
		{"invalid UTF-8", func(d *eventsv1.SongDescription) { d.Title = "\xff" }, "UTF-8"},
		{"not a URI", func(d *eventsv1.SongDescription) { d.PaymentProtocols = []string{"paypal"} }, "not a URI"},
	}
	for _, c := range cases {
		d := validDescription()
		c.mutate(d)
		err := domain.ValidateDescription(d)
		if !errors.Is(err, domain.ErrInvalidDescription) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrInvalidDescription mentioning %q", c.name, err, c.want)
		}
	}
}

// Whatever a client sends, validation never panics, and the canonical
// bytes of a valid description are deterministic, injective on the text
// fields and verify once signed.
func FuzzDescription(f *testing.F) {
	f.Add("Song", "artist", "notes", uint64(1000), uint32(1_000_000), int64(99), []byte{1})
	f.Add("", "a\nb", "\"quoted\"", uint64(0), uint32(0), int64(-1), []byte{})
	f.Add("tïtle", "x: y", "line\nbreak", uint64(1<<40), uint32(500_000), int64(1<<62), bytes.Repeat([]byte{9}, 40))
	_, key, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, title, artist, notes string, duration uint64, share uint32, price int64, hash []byte) {
		d := validDescription()
		d.Title, d.Artists, d.LinerNotes, d.DurationMs, d.ContentHash = title, []string{artist}, notes, duration, hash
		d.Splits = []*eventsv1.Split{{PayeeId: "a", SharePpm: share}, {PayeeId: "b", SharePpm: 1_000_000 - share%1_000_001}}
		d.Price.Units = price
		err := domain.ValidateDescription(d)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalidDescription) {
				t.Fatalf("error outside the sentinel: %v", err)
			}
			return
		}
		c1, c2 := domain.Canonical(d, 3), domain.Canonical(d, 3)
		if !bytes.Equal(c1, c2) {
			t.Fatal("canonical bytes differ between two calls")
		}
		d2 := validDescription()
		d2.Title, d2.Artists, d2.LinerNotes, d2.DurationMs, d2.ContentHash, d2.Splits, d2.Price = title+"x", d.Artists, notes, duration, hash, d.Splits, d.Price
		if bytes.Equal(c1, domain.Canonical(d2, 3)) {
			t.Fatal("two titles give the same canonical bytes")
		}
		if err := domain.VerifyCanonical(key.Public().(ed25519.PublicKey), c1, domain.SignDescription(key, d, 3)); err != nil {
			t.Fatalf("signed description does not verify: %v", err)
		}
	})
}
