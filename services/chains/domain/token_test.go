package domain_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/chains/domain"
	"golang.org/x/crypto/nacl/box"
)

const song = "song-7f3a"

// keyOf is a distributor's key, derived from its id so tests are repeatable.
func keyOf(id string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("test distributor " + id))
	return ed25519.NewKeyFromSeed(s[:])
}

// registry is the service's table of registered distributor keys.
type registry map[string]ed25519.PublicKey

func (r registry) lookup(id string) (ed25519.PublicKey, bool) {
	k, ok := r[id]
	return k, ok
}

func serviceKeys(name string) domain.ServiceKeys {
	s := sha256.Sum256([]byte("test service " + name))
	return domain.DeriveServiceKeys(ed25519.NewKeyFromSeed(s[:]))
}

var svc = serviceKeys("chains")

// registered registers the given ids.
func registered(ids ...string) registry {
	r := registry{}
	for _, id := range ids {
		r[id] = keyOf(id).Public().(ed25519.PublicKey)
	}
	return r
}

// build issues a root to ids[0] and extends it with each further id, all for
// song; it returns the token after each layer (tokens[i] has i+1 layers).
func build(t testing.TB, ids ...string) [][]byte {
	t.Helper()
	tok, err := domain.IssueRoot(svc, "tok-1", song, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	out := [][]byte{tok}
	for _, id := range ids[1:] {
		if tok, err = domain.Extend(tok, song, id, keyOf(id), svc.Public()); err != nil {
			t.Fatal(err)
		}
		out = append(out, tok)
	}
	return out
}

func dists(n int) []string {
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, fmt.Sprintf("dist-%02d", i))
	}
	return ids
}

func resolve(tok []byte, purchaser string, reg registry) (domain.Chain, error) {
	return domain.Resolve(tok, song, purchaser, svc, reg.lookup, 0)
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// The wire format, re-implemented from the package documentation: these
// helpers let a test that holds the service key take hops apart and seal
// them around other tokens, which no distributor can do.

type openedHop struct {
	dist, song string
	sig, prev  []byte
}

func openHop(t *testing.T, tok []byte) openedHop {
	t.Helper()
	plain, ok := box.OpenAnonymous(nil, tok[6:], svc.BoxPublic, svc.BoxPrivate)
	if !ok {
		t.Fatal("hop does not open")
	}
	var h openedHop
	str := func() string {
		n := int(plain[0])
		s := string(plain[1 : 1+n])
		plain = plain[1+n:]
		return s
	}
	h.dist, h.song = str(), str()
	h.sig, plain = plain[:64], plain[64:]
	n := binary.BigEndian.Uint32(plain)
	h.prev = plain[4 : 4+n]
	if len(plain) != int(4+n) {
		t.Fatal("trailing bytes in hop")
	}
	return h
}

func signHop(key ed25519.PrivateKey, prev []byte, song, dist string) []byte {
	h := sha256.Sum256(prev)
	m := append([]byte("fanfare/referral-hop/v1\x00"), h[:]...)
	m = append(append(m, byte(len(song))), song...)
	m = append(append(m, byte(len(dist))), dist...)
	return ed25519.Sign(key, m)
}

func sealHop(t *testing.T, layers byte, h openedHop) []byte {
	t.Helper()
	var plain []byte
	plain = append(append(plain, byte(len(h.dist))), h.dist...)
	plain = append(append(plain, byte(len(h.song))), h.song...)
	plain = append(plain, h.sig...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(h.prev)))
	plain = append(plain, h.prev...)
	out, err := box.SealAnonymous([]byte{'F', 'R', 'T', '1', 0x02, layers}, plain, svc.BoxPublic, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestResolveHappyPath(t *testing.T) {
	for _, n := range []int{1, 2, 8, 16} {
		t.Run(fmt.Sprint(n, "layers"), func(t *testing.T) {
			ids := dists(n)
			toks := build(t, ids...)
			tok := toks[n-1]
			if h, err := domain.Hops(tok); err != nil || h != n {
				t.Fatalf("Hops = %d, %v; want %d", h, err, n)
			}
			parsed, err := domain.ParseTokenText(" " + domain.EncodeToken(tok) + "\n")
			if err != nil || !bytes.Equal(parsed, tok) {
				t.Fatalf("text form does not round-trip: %v", err)
			}
			c, err := resolve(parsed, "buyer", registered(ids...))
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(ids)
			slices.Reverse(want)
			if !slices.Equal(c.Raw, ids) || !slices.Equal(c.Distributors, want) {
				t.Fatalf("chain raw %v distributors %v; want %v, %v", c.Raw, c.Distributors, ids, want)
			}
			if c.TokenID != "tok-1" || c.SongID != song || c.TokenHash != sha256.Sum256(tok) {
				t.Fatalf("chain %+v", c)
			}
		})
	}
}

func TestTamperedByteIsDetected(t *testing.T) {
	ids := dists(3)
	reg := registered(ids...)
	for _, tok := range build(t, ids...) {
		layers, _ := domain.Hops(tok)
		for i := range tok {
			for _, bit := range []byte{0x01, 0x80} {
				bad := slices.Clone(tok)
				bad[i] ^= bit
				_, err := resolve(bad, "buyer", reg)
				switch {
				case err == nil:
					t.Fatalf("%d layers: flipping bit %#x of byte %d went unnoticed", layers, bit, i)
				case i >= 6 && layers > 1 && (!errors.Is(err, domain.ErrMalformed) || !strings.Contains(err.Error(), "does not open")):
					// Everything after the header of a hop is sealed: the box
					// authenticates it.
					t.Fatalf("%d layers, byte %d: %v, want malformed: does not open", layers, i, err)
				case i >= 6 && layers == 1 && !errors.Is(err, domain.ErrMalformed) && !errors.Is(err, domain.ErrUnknownRoot):
					t.Fatalf("root, byte %d: %v, want malformed or unknown root", i, err)
				case i < 6 && !errors.Is(err, domain.ErrMalformed) && !errors.Is(err, domain.ErrTooManyHops):
					t.Fatalf("%d layers, header byte %d: %v, want malformed or too many hops", layers, i, err)
				}
			}
		}
		for n := 0; n < len(tok); n++ {
			_, err := resolve(tok[:n], "buyer", reg)
			wantErr(t, err, domain.ErrMalformed)
		}
		_, err := resolve(append(slices.Clone(tok), 0), "buyer", reg)
		wantErr(t, err, domain.ErrMalformed)
	}
}

func TestLyingHeaderIsMalformed(t *testing.T) {
	ids := dists(3)
	reg := registered(ids...)
	tok := build(t, ids...)[2]
	for _, n := range []byte{2, 4, 16} {
		bad := slices.Clone(tok)
		bad[5] = n
		_, err := resolve(bad, "buyer", reg)
		wantErr(t, err, domain.ErrMalformed)
	}
	if _, err := resolve(tok, "buyer", reg); err != nil {
		t.Fatal(err)
	}
}

func TestDroppedHopIsDetected(t *testing.T) {
	ids := []string{"A", "B", "C"}
	reg := registered(ids...)
	toks := build(t, ids...)
	c := openHop(t, toks[2])
	// Control: resealing C's hop around what it signed resolves.
	if _, err := resolve(sealHop(t, 3, c), "buyer", reg); err != nil {
		t.Fatalf("control: %v", err)
	}
	// Drop B: C's hop around the root.
	c.prev = toks[0]
	_, err := resolve(sealHop(t, 2, c), "buyer", reg)
	wantErr(t, err, domain.ErrBadSignature)
}

func TestReorderedHopsAreDetected(t *testing.T) {
	ids := []string{"A", "B", "C"}
	reg := registered(ids...)
	toks := build(t, ids...)
	b, c := openHop(t, toks[1]), openHop(t, toks[2])
	// A → C → B instead of A → B → C, keeping both signatures.
	c.prev = toks[0]
	b.prev = sealHop(t, 2, c)
	_, err := resolve(sealHop(t, 3, b), "buyer", reg)
	wantErr(t, err, domain.ErrBadSignature)
}

func TestForgedSignature(t *testing.T) {
	reg := registered("A", "B")
	root := build(t, "A")[0]
	mallory := keyOf("mallory")
	forged, err := domain.Extend(root, song, "B", mallory, svc.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(forged, "buyer", reg)
	wantErr(t, err, domain.ErrBadSignature)

	// An unregistered distributor, and a registry entry that is not a key.
	stranger, _ := domain.Extend(root, song, "stranger", keyOf("stranger"), svc.Public())
	_, err = resolve(stranger, "buyer", reg)
	wantErr(t, err, domain.ErrBadSignature)
	reg["stranger"] = ed25519.PublicKey{1, 2, 3}
	_, err = resolve(stranger, "buyer", reg)
	wantErr(t, err, domain.ErrBadSignature)

	// Control: the real key verifies.
	genuine, _ := domain.Extend(root, song, "B", keyOf("B"), svc.Public())
	if _, err := resolve(genuine, "buyer", reg); err != nil {
		t.Fatal(err)
	}
}

func TestSongMismatch(t *testing.T) {
	ids := []string{"A", "B", "C"}
	reg := registered(ids...)
	toks := build(t, ids...)
	for _, tok := range toks {
		_, err := domain.Resolve(tok, "another-song", "buyer", svc, reg.lookup, 0)
		wantErr(t, err, domain.ErrSongMismatch)
	}
	// A root for another song under hops for song (sealed by hand, as
	// Extend refuses to).
	otherRoot, _ := domain.IssueRoot(svc, "tok-2", "another-song", "A")
	h := openedHop{dist: "B", song: song, prev: otherRoot}
	h.sig = signHop(keyOf("B"), otherRoot, song, "B")
	_, err := resolve(sealHop(t, 2, h), "buyer", reg)
	wantErr(t, err, domain.ErrSongMismatch)
	if !strings.Contains(err.Error(), "layer 1") {
		t.Fatalf("mismatch not found at the root: %v", err)
	}

	// C extends B's token for another song: its hop is validly signed.
	other, err := domain.Extend(toks[1], "another-song", "C", keyOf("C"), svc.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(other, "buyer", reg)
	wantErr(t, err, domain.ErrSongMismatch)
	_, err = domain.Resolve(other, "another-song", "buyer", svc, reg.lookup, 0)
	wantErr(t, err, domain.ErrSongMismatch) // the root and B's hop are for song

	// A bare root is the one layer an extender can read: Extend checks it.
	_, err = domain.Extend(toks[0], "another-song", "B", keyOf("B"), svc.Public())
	wantErr(t, err, domain.ErrSongMismatch)
}

func TestTooManyHops(t *testing.T) {
	ids := dists(17)
	reg := registered(ids...)
	toks := build(t, ids[:16]...)
	_, err := domain.Extend(toks[15], song, ids[16], keyOf(ids[16]), svc.Public())
	wantErr(t, err, domain.ErrTooManyHops)

	// A 17th layer built by hand, validly signed.
	h := openedHop{dist: ids[16], song: song, prev: toks[15]}
	h.sig = signHop(keyOf(ids[16]), h.prev, song, h.dist)
	long := sealHop(t, 17, h)
	_, err = resolve(long, "buyer", reg)
	wantErr(t, err, domain.ErrTooManyHops)
	// It is only too long: with a higher limit it resolves.
	c, err := domain.Resolve(long, song, "buyer", svc, reg.lookup, 17)
	if err != nil || len(c.Raw) != 17 {
		t.Fatalf("control: %v %v", c.Raw, err)
	}
	// A header understating the count is a lie, found where it is told.
	_, err = resolve(sealHop(t, 16, h), "buyer", reg)
	wantErr(t, err, domain.ErrMalformed)
	if !strings.Contains(err.Error(), "layer 15: a hop layer stating 16 layers") {
		t.Fatalf("the lie is not pinpointed: %v", err)
	}
	// A lower limit.
	_, err = domain.Resolve(toks[7], song, "buyer", svc, reg.lookup, 4)
	wantErr(t, err, domain.ErrTooManyHops)
}

func TestForgedRoot(t *testing.T) {
	reg := registered("A", "B")
	rogue := serviceKeys("rogue")
	root, err := domain.IssueRoot(rogue, "tok-x", song, "A")
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(root, "buyer", reg)
	wantErr(t, err, domain.ErrUnknownRoot)
	// Extended by an honest distributor toward the real service.
	tok, err := domain.Extend(root, song, "B", keyOf("B"), svc.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(tok, "buyer", reg)
	wantErr(t, err, domain.ErrUnknownRoot)
	// A hop sealed to another service does not open here.
	tok, _ = domain.Extend(build(t, "A")[0], song, "B", keyOf("B"), rogue.Public())
	_, err = resolve(tok, "buyer", reg)
	wantErr(t, err, domain.ErrMalformed)
}

func TestCyclesAndPurchaserErased(t *testing.T) {
	for _, tc := range []struct {
		raw       []string
		purchaser string
		want      []string
	}{
		{[]string{"A", "B", "C", "A", "D"}, "P", []string{"D", "A"}},
		{[]string{"A", "B", "B", "C"}, "P", []string{"C", "B", "A"}},
		{[]string{"A", "P", "B"}, "P", []string{"A"}},
		{[]string{"A", "B", "C"}, "C", []string{"B", "A"}},
		{[]string{"P", "A"}, "P", []string{}},
		{[]string{"A", "B", "A"}, "P", []string{"A"}},
		{[]string{"A", "B", "C", "B", "D", "A", "E"}, "P", []string{"E", "A"}},
		{[]string{"A", "B", "C", "D"}, "", []string{"D", "C", "B", "A"}},
	} {
		if got := domain.EraseLoops(tc.raw, tc.purchaser); !slices.Equal(got, tc.want) {
			t.Errorf("EraseLoops(%v, %q) = %v, want %v", tc.raw, tc.purchaser, got, tc.want)
		}
		if tc.purchaser == "" {
			continue
		}
		toks := build(t, tc.raw...)
		c, err := resolve(toks[len(toks)-1], tc.purchaser, registered(tc.raw...))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Raw, tc.raw) || !slices.Equal(c.Distributors, tc.want) {
			t.Errorf("Resolve %v for %q: raw %v distributors %v, want %v", tc.raw, tc.purchaser, c.Raw, c.Distributors, tc.want)
		}
	}
}

func TestDistributorCannotReadEarlierHops(t *testing.T) {
	ids := []string{"first-distributor-alice", "second-distributor-bob", "third-distributor-carol"}
	toks := build(t, ids...)
	// Control: a root is in the clear (its reader is the first distributor).
	if !bytes.Contains(toks[0], []byte(ids[0])) {
		t.Fatal("control: the root should name its distributor in the clear")
	}
	for i, tok := range toks[1:] {
		for _, s := range append(slices.Clone(ids), song, "tok-1") {
			if bytes.Contains(tok, []byte(s)) {
				t.Errorf("token of %d layers holds %q in the clear", i+2, s)
			}
		}
		pub, priv, _ := box.GenerateKey(rand.Reader)
		if _, ok := box.OpenAnonymous(nil, tok[6:], pub, priv); ok {
			t.Error("a hop opens with a key that is not the service's")
		}
		if _, ok := box.OpenAnonymous(nil, tok[6:], svc.BoxPublic, svc.BoxPrivate); !ok {
			t.Error("control: a hop does not open with the service's key")
		}
	}
}

func TestReasonsMatchTheEventEnum(t *testing.T) {
	seen := map[int32]bool{}
	for _, tc := range []struct {
		err  error
		want eventsv1.DistributorChainRejected_Reason
	}{
		{domain.ErrMalformed, eventsv1.DistributorChainRejected_REASON_MALFORMED},
		{domain.ErrBadSignature, eventsv1.DistributorChainRejected_REASON_BAD_SIGNATURE},
		{domain.ErrSongMismatch, eventsv1.DistributorChainRejected_REASON_SONG_MISMATCH},
		{domain.ErrTooManyHops, eventsv1.DistributorChainRejected_REASON_TOO_MANY_HOPS},
		{domain.ErrUnknownRoot, eventsv1.DistributorChainRejected_REASON_UNKNOWN_ROOT},
		{domain.ErrInvalidArgument, eventsv1.DistributorChainRejected_REASON_UNSPECIFIED},
		{errors.New("other"), eventsv1.DistributorChainRejected_REASON_UNSPECIFIED},
	} {
		wrapped := fmt.Errorf("resolving: %w", tc.err)
		v, ok := eventsv1.DistributorChainRejected_Reason_value[string(domain.ReasonOf(wrapped))]
		if !ok || eventsv1.DistributorChainRejected_Reason(v) != tc.want {
			t.Errorf("ReasonOf(%v) = %q, want %v", tc.err, domain.ReasonOf(wrapped), tc.want)
		}
		if tc.want != 0 && seen[v] {
			t.Errorf("reason %v used twice", tc.want)
		}
		seen[v] = true
	}
	// Detail comes with the sentinel.
	_, err := resolve([]byte("FRT1\x02\x03nonsense"), "buyer", registry{})
	if domain.ReasonOf(err) != domain.ReasonMalformed || !strings.Contains(err.Error(), "layer 3") {
		t.Fatalf("error %q, reason %q", err, domain.ReasonOf(err))
	}
}

func TestParseTokenText(t *testing.T) {
	tok := build(t, "A", "B")[1]
	text := domain.EncodeToken(tok)
	for _, bad := range []string{
		"", "FRT1", text + "=", text[:10] + "\n" + text[10:], strings.ReplaceAll(text, "-", "+") + "+",
		text[:41], // a length no encoding has
		domain.EncodeToken([]byte("FRT2\x01\x01")), domain.EncodeToken([]byte("FRT1\x02\x01")),
		strings.Repeat("A", 100000), nonCanonical(domain.EncodeToken([]byte("FRT1\x01\x01X"))),
	} {
		if _, err := domain.ParseTokenText(bad); !errors.Is(err, domain.ErrMalformed) {
			t.Errorf("ParseTokenText(%.40q) = %v, want malformed", bad, err)
		}
	}
	if got, err := domain.ParseTokenText("\t" + text + " \r\n"); err != nil || !bytes.Equal(got, tok) {
		t.Fatalf("ParseTokenText = %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	long := strings.Repeat("x", domain.MaxIDLen+1)
	for _, id := range []string{"", long, "\xff"} {
		_, err := domain.IssueRoot(svc, "tok", song, id)
		wantErr(t, err, domain.ErrInvalidArgument)
		_, err = domain.Extend(build(t, "A")[0], song, id, keyOf("A"), svc.Public())
		wantErr(t, err, domain.ErrInvalidArgument)
	}
	if _, err := domain.IssueRoot(svc, "tok", song, strings.Repeat("x", domain.MaxIDLen)); err != nil {
		t.Fatalf("an id of MaxIDLen bytes: %v", err)
	}
	_, err := domain.Extend([]byte("not a token"), song, "B", keyOf("B"), svc.Public())
	wantErr(t, err, domain.ErrMalformed)
	_, err = domain.Extend(build(t, "A")[0], song, "B", nil, svc.Public())
	wantErr(t, err, domain.ErrInvalidArgument)
	_, err = domain.Extend(build(t, "A")[0], song, "B", keyOf("B"), domain.PublicKeys{})
	wantErr(t, err, domain.ErrInvalidArgument)
	_, err = domain.Resolve(build(t, "A")[0], song, "buyer", svc, nil, 0)
	wantErr(t, err, domain.ErrInvalidArgument)
	_, err = domain.Resolve(build(t, "A")[0], song, "buyer", domain.ServiceKeys{}, registry{}.lookup, 0)
	wantErr(t, err, domain.ErrInvalidArgument)
}

func TestDeriveServiceKeys(t *testing.T) {
	a, b := serviceKeys("chains"), serviceKeys("chains")
	if *a.BoxPrivate != *b.BoxPrivate || *a.BoxPublic != *b.BoxPublic {
		t.Fatal("derivation is not deterministic")
	}
	if c := serviceKeys("other"); *c.BoxPublic == *a.BoxPublic {
		t.Fatal("different seeds gave the same box key")
	}
	sealed, _ := box.SealAnonymous(nil, []byte("hi"), a.Public().Box, nil)
	if m, ok := box.OpenAnonymous(nil, sealed, a.BoxPublic, a.BoxPrivate); !ok || string(m) != "hi" {
		t.Fatal("the derived box keys are not a pair")
	}
	if !bytes.Equal(a.Public().Sign, a.Sign.Public().(ed25519.PublicKey)) {
		t.Fatal("Public().Sign is not the signing key's public key")
	}
}

// nonCanonical flips a padding bit of base64 text whose last character
// carries one (the decoded length is not a multiple of 3).
func nonCanonical(text string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, text[len(text)-1])
	return text[:len(text)-1] + string(alphabet[i^1])
}
