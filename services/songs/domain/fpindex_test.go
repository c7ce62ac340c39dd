package domain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/fanfare/fanfare/services/songs/domain"
)

func songID(i int) string { return fmt.Sprintf("song-%05d", i) }

// buildIndex registers n audio-like fingerprints of 200–950 items.
func buildIndex(t testing.TB, r *rand.Rand, n int) (*domain.FingerprintIndex, [][]uint32) {
	t.Helper()
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	fps := make([][]uint32, n)
	for i := range fps {
		fps[i] = audioLike(r, 200+r.IntN(751))
		if err := x.Add(songID(i), fps[i]); err != nil {
			t.Fatal(err)
		}
	}
	return x, fps
}

// variant cuts or delays fp by shift items, flips 0–2 bits per item and
// keeps at most keep items.
func variant(r *rand.Rand, fp []uint32, shift, keep int) []uint32 {
	var v []uint32
	if shift >= 0 {
		v = slices.Clone(fp[shift:])
	} else {
		v = append(randomItems(r, -shift), fp...)
	}
	v = noisy(r, v, 2)
	if keep < len(v) {
		v = v[:keep]
	}
	return v
}

func expectMatch(t *testing.T, x *domain.FingerprintIndex, q []uint32, song []uint32, id string, off int) {
	t.Helper()
	ms := x.Lookup(q)
	if len(ms) == 0 || ms[0].SongID != id {
		t.Fatalf("lookup found %v, want %s", ms, id)
	}
	wantPPM, wantOff := domain.FingerprintSimilarity(song, q, domain.FingerprintMaxOffset)
	if ms[0].SimilarityPPM != wantPPM || ms[0].Offset != wantOff {
		t.Fatalf("match %+v, FingerprintSimilarity says %d at %d", ms[0], wantPPM, wantOff)
	}
	if off != wantOff {
		t.Fatalf("offset %d, want %d", ms[0].Offset, off)
	}
}

func TestFingerprintIndexFindsVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x, fps := buildIndex(t, r, 3000)
	if st := x.Stats(); st.Songs != 3000 || st.Postings == 0 || st.Buckets <= 1<<10 {
		t.Fatalf("stats %+v: the table should have grown", st)
	}
	fp := fps[17]
	expectMatch(t, x, fp, fp, songID(17), 0)
	expectMatch(t, x, fp[37:], fp, songID(17), 37)
	expectMatch(t, x, variant(r, fp, -37, 1000), fp, songID(17), -37)
	expectMatch(t, x, variant(r, fp, 120, 1000), fp, songID(17), 120)
	expectMatch(t, x, variant(r, fp, -120, 1000), fp, songID(17), -120)
	expectMatch(t, x, variant(r, fp, 5, 40), fp, songID(17), 5) // a 5 s clip

	// Many random variants: every one is found, with the right offset.
	for i := range 500 {
		k := r.IntN(len(fps))
		shift := r.IntN(2*domain.FingerprintMaxOffset+1) - domain.FingerprintMaxOffset
		if shift > len(fps[k])-domain.FingerprintMinItems*2 {
			shift = 0
		}
		// A delayed copy must keep enough of the song to overlap it by half.
		q := variant(r, fps[k], shift, 2*max(0, -shift)+32+r.IntN(900))
		ms := x.Lookup(q)
		if len(ms) == 0 || ms[0].SongID != songID(k) || ms[0].Offset != shift || ms[0].SimilarityPPM != 1e6 {
			t.Fatalf("variant %d of %s (shift %d, %d items): %+v", i, songID(k), shift, len(q), ms)
		}
	}
}

func TestFingerprintIndexRejectsOthers(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x, fps := buildIndex(t, r, 2000)
	for range 200 {
		if ms := x.Lookup(audioLike(r, 100+r.IntN(850))); len(ms) != 0 {
			t.Fatalf("an unregistered fingerprint matched %+v", ms)
		}
	}
	// Too far out of alignment is not a conflict either.
	long := audioLike(r, 900)
	if err := x.Add("long", long); err != nil {
		t.Fatal(err)
	}
	if ms := x.Lookup(long[200:]); len(ms) != 0 {
		t.Fatalf("a cut at 200 items matched %+v", ms)
	}
	// Half the items off by 3+ bits: 500,000 ppm, below the threshold.
	half := slices.Clone(fps[4])
	for i := range half {
		if i%2 == 0 {
			half[i] = flip(r, half[i], 3+r.IntN(8))
		}
	}
	if ms := x.Lookup(half); len(ms) != 0 {
		t.Fatalf("a half-mangled fingerprint matched %+v", ms)
	}
	// A lower threshold reports it.
	low := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{MinSimilarityPPM: 400_000})
	if err := low.Add("four", fps[4]); err != nil {
		t.Fatal(err)
	}
	if ms := low.Lookup(half); len(ms) != 1 || ms[0].SimilarityPPM < 400_000 || ms[0].SimilarityPPM > 600_000 {
		t.Fatalf("threshold 0.4: %+v", ms)
	}
}

func TestFingerprintIndexRemoveAndReplace(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	x, fps := buildIndex(t, r, 500)
	before := x.Stats()
	if !x.Remove(songID(7)) || x.Remove(songID(7)) {
		t.Fatal("Remove should report true once")
	}
	if ms := x.Lookup(fps[7]); len(ms) != 0 {
		t.Fatalf("removed song still matches: %+v", ms)
	}
	after := x.Stats()
	if after.Songs != 499 || after.Postings >= before.Postings || after.Items != before.Items-len(fps[7]) {
		t.Fatalf("stats before %+v after %+v", before, after)
	}
	// Its slot is reused; the others are untouched.
	other := audioLike(r, 400)
	if err := x.Add("newcomer", other); err != nil {
		t.Fatal(err)
	}
	expectMatch(t, x, other, other, "newcomer", 0)
	expectMatch(t, x, fps[8], fps[8], songID(8), 0)
	// Add again under the same id replaces the fingerprint.
	repl := audioLike(r, 300)
	if err := x.Add(songID(8), repl); err != nil {
		t.Fatal(err)
	}
	if ms := x.Lookup(fps[8]); len(ms) != 0 {
		t.Fatalf("replaced fingerprint still matches: %+v", ms)
	}
	expectMatch(t, x, repl, repl, songID(8), 0)
	if x.Len() != 500 {
		t.Fatalf("Len = %d", x.Len())
	}
}

func TestFingerprintIndexAddErrors(t *testing.T) {
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	err := x.Add("s", make([]uint32, domain.FingerprintMinItems-1))
	var fe *domain.FingerprintError
	if !errors.Is(err, domain.ErrInvalidFingerprint) || !errors.As(err, &fe) || fe.Kind != domain.FingerprintErrTooShort {
		t.Fatalf("short: %v", err)
	}
	if err := x.Add("s", make([]uint32, domain.FingerprintMaxItems+1)); !errors.Is(err, domain.ErrInvalidFingerprint) {
		t.Fatalf("long: %v", err)
	}
	if err := x.Add("", make([]uint32, 100)); err == nil {
		t.Fatal("empty id accepted")
	}
	if x.Len() != 0 || x.Lookup(make([]uint32, 100)) != nil {
		t.Fatal("failed adds left something behind")
	}
	// The index keeps its own copy.
	fp := audioLike(rand.New(rand.NewPCG(1, 1)), 100)
	orig := slices.Clone(fp)
	if err := x.Add("s", fp); err != nil {
		t.Fatal(err)
	}
	for i := range fp {
		fp[i] = ^fp[i]
	}
	expectMatch(t, x, orig, orig, "s", 0)
}

// Equal fingerprints under several ids: all are reported, ties by id, and
// two indexes fed the same registrations answer the same.
func TestFingerprintIndexDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	fps := make([][]uint32, 300)
	for i := range fps {
		fps[i] = audioLike(r, 150+r.IntN(300))
	}
	dup := fps[10]
	build := func() *domain.FingerprintIndex {
		x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
		for i, fp := range fps {
			_ = x.Add(songID(i), fp)
		}
		for _, id := range []string{"zz-copy", "aa-copy", "mm-copy"} {
			_ = x.Add(id, dup)
		}
		return x
	}
	a, b := build(), build()
	ms := a.Lookup(dup)
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.SongID)
		if m.SimilarityPPM != 1e6 || m.Offset != 0 {
			t.Fatalf("match %+v", m)
		}
	}
	if want := []string{"aa-copy", "mm-copy", songID(10), "zz-copy"}; !slices.Equal(ids, want) {
		t.Fatalf("matches %v, want %v", ids, want)
	}
	q := rand.New(rand.NewPCG(19, 20))
	for range 100 {
		k := q.IntN(len(fps))
		v := variant(q, fps[k], q.IntN(60)-30, 100+q.IntN(400))
		if ma, mb := a.Lookup(v), b.Lookup(v); !slices.Equal(ma, mb) {
			t.Fatalf("same registrations, different answers: %v vs %v", ma, mb)
		}
	}
}

// MaxCandidates bounds verification: with more equal songs than
// candidates, only that many are reported.
func TestFingerprintIndexMaxCandidates(t *testing.T) {
	fp := audioLike(rand.New(rand.NewPCG(21, 22)), 200)
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{MaxCandidates: 3})
	for i := range 10 {
		_ = x.Add(songID(i), fp)
	}
	ms := x.Lookup(fp)
	if len(ms) != 3 || ms[0].SongID != songID(0) || ms[2].SongID != songID(2) {
		t.Fatalf("got %+v", ms)
	}
}

// A common intro (silence: one item repeated) shared by thousands of songs
// neither drowns the lookup nor makes them conflict.
func TestFingerprintIndexCommonIntro(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	intro := slices.Repeat([]uint32{0x12345678}, 60)
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	fps := make([][]uint32, 5000)
	for i := range fps {
		fps[i] = append(slices.Clone(intro), audioLike(r, 340)...)
		if err := x.Add(songID(i), fps[i]); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		k := r.IntN(len(fps))
		ms := x.Lookup(variant(r, fps[k], r.IntN(100), 400))
		if len(ms) != 1 || ms[0].SongID != songID(k) {
			t.Fatalf("song %d: %+v", k, ms)
		}
	}
}

func TestFingerprintIndexConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	const writers, perWriter = 4, 150
	fps := make([][]uint32, writers*perWriter)
	for i := range fps {
		fps[i] = audioLike(r, 120+r.IntN(300))
	}
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range writers {
		wg.Go(func() {
			for i := w * perWriter; i < (w+1)*perWriter; i++ {
				if err := x.Add(songID(i), fps[i]); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					x.Remove(songID(i))
				}
			}
		})
	}
	for g := range 4 {
		wg.Go(func() {
			q := rand.New(rand.NewPCG(uint64(g), 99))
			for range 300 {
				k := q.IntN(len(fps))
				for _, m := range x.Lookup(fps[k]) {
					if m.SongID != songID(k) {
						errs <- fmt.Errorf("lookup of %s found %s", songID(k), m.SongID)
						return
					}
				}
				_ = x.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, fp := range fps {
		ms := x.Lookup(fp)
		if i%10 == 0 {
			if len(ms) != 0 {
				t.Fatalf("removed %s found: %+v", songID(i), ms)
			}
		} else if len(ms) != 1 || ms[0].SongID != songID(i) {
			t.Fatalf("%s: %+v", songID(i), ms)
		}
	}
}
