package domain_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fanfare/fanfare/services/songs/domain"
)

// Real fpcalc 1.5.1 output for an 8 s sox-made melody, in its three forms
// (default, -raw, -raw -signed).
const (
	realCompressed = "AQAAK1lULWm2QHUmBw6To4ugyomESJ8En-CbwS8XhNR4QrlyhPzxayGq0JqHi3giZZg7Mim-IPtRRskzTEkiSwvy9Pjxn3ieIE-gbWmQxkqIPnmxTzgeKcjPQQvZI1yU40f5402R_MiVZLicwdyD8lI6AGuYAwBYwYCBxAErJAAMACSkEACKLQijCBFimBKEGA"
	realRaw        = "3381078105,3397523483,2323776635,2323775979,2325201065,2327675068,2331607196,2386264212,2367262900,2619061669,3692801955,4229607090,4169117426,1748346402,1747248674,1746940194,4012970022,4013043750,4281480239,4250013503,4240902859,3699641034,3700165258,3448515274,3398183754,3398184011,3398377689,3399413944,3468591272,3471605932,3463217324,3442770092,3424027053,1276289951,1544728078,1546824206,1479584542,1478519070,1545611549,1545671708,1546785052,1548878652,3431334444"
	realSigned     = "-913889191,-897443813,-1971190661,-1971191317,-1969766231,-1967292228,-1963360100,-1908703084,-1927704396,-1675905627,-602165341,-65360206,-125849870,1748346402,1747248674,1746940194,-281997274,-281923546,-13487057,-44953793,-54064437,-595326262,-594802038,-846452022,-896783542,-896783285,-896589607,-895553352,-826376024,-823361364,-831749972,-852197204,-870940243,1276289951,1544728078,1546824206,1479584542,1478519070,1545611549,1545671708,1546785052,1548878652,-863632852"
)

func mustParse(t testing.TB, s string) []uint32 {
	t.Helper()
	items, err := domain.ParseFingerprint(s)
	if err != nil {
		t.Fatalf("ParseFingerprint(%.40q…): %v", s, err)
	}
	return items
}

func TestParseRealFpcalcOutput(t *testing.T) {
	raw := mustParse(t, realRaw)
	if len(raw) != 43 || raw[0] != 3381078105 || raw[42] != 3431334444 {
		t.Fatalf("raw: %d items, first %d, last %d", len(raw), raw[0], raw[len(raw)-1])
	}
	for name, s := range map[string]string{
		"compressed":        realCompressed,
		"compressed prefix": "FINGERPRINT=" + realCompressed,
		"signed":            realSigned,
		"raw prefix":        "FINGERPRINT=" + realRaw + "\n",
		"fpcalc text":       "FILE=clip.wav\nDURATION=8\nFINGERPRINT=" + realCompressed + "\n",
		"raw spaced":        " " + strings.ReplaceAll(realRaw, ",", ", ") + " ",
	} {
		if got := mustParse(t, s); !slices.Equal(got, raw) {
			t.Errorf("%s decodes to %v, want %v", name, got, raw)
		}
	}
	alg, items, err := domain.DecodeCompressedFingerprint(realCompressed)
	if err != nil || alg != 1 || !slices.Equal(items, raw) {
		t.Fatalf("DecodeCompressedFingerprint = %d, %v, %v", alg, items, err)
	}
	// The compressor reproduces fpcalc's string byte for byte.
	if got := domain.CompressFingerprint(1, raw); got != realCompressed {
		t.Fatalf("CompressFingerprint = %s\nfpcalc printed     %s", got, realCompressed)
	}
}

// A vector worked out by hand from chromaprint's format.
func TestCompressedHandVector(t *testing.T) {
	items := make([]uint32, 16)
	items[0], items[1], items[2], items[3] = 1, 3, 3, 0x80000000
	// deltas: 1 → codes 1,0; 2 → 2,0; 0 → 0; 0x80000003 (bits 1,2,32) →
	// 1,1,7(+23),0; 0x80000000 (bit 32) → 7(+25),0; then 11 × 0.
	// 22 normal codes = 66 bits = 9 bytes; exceptions 23, 25 = 2 bytes.
	want := []byte{1, 0, 0, 16, 0x81, 0x80, 0xe4, 0x38, 0, 0, 0, 0, 0, 0x37, 0x03}
	wantS := base64.RawURLEncoding.EncodeToString(want)
	if got := domain.CompressFingerprint(1, items); got != wantS {
		got, _ := base64.RawURLEncoding.DecodeString(got)
		t.Fatalf("CompressFingerprint = % x, want % x", got, want)
	}
	if got := mustParse(t, wantS); !slices.Equal(got, items) {
		t.Fatalf("decoded %v, want %v", got, items)
	}
	// The standard alphabet with padding is tolerated.
	if got := mustParse(t, base64.StdEncoding.EncodeToString(want)); !slices.Equal(got, items) {
		t.Fatalf("std base64 decoded %v", got)
	}
}

func randomItems(r *rand.Rand, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.Uint32()
	}
	return out
}

// audioLike items change a few bits at a time, like real fingerprints.
func audioLike(r *rand.Rand, n int) []uint32 {
	out := make([]uint32, n)
	x := r.Uint32()
	for i := range out {
		for range r.IntN(4) {
			x ^= 1 << r.IntN(32)
		}
		out[i] = x
	}
	return out
}

func TestCompressRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]uint32{
		"zeros":      make([]uint32, 16),
		"ones":       slices.Repeat([]uint32{0xffffffff}, 40),
		"high bit":   slices.Repeat([]uint32{0x80000000, 0}, 20),
		"random max": randomItems(r, domain.FingerprintMaxItems),
		"audio 950":  audioLike(r, 950),
	}
	for n := 16; n < 300; n += 37 {
		cases[fmt.Sprint("random ", n)] = randomItems(r, n)
	}
	for name, items := range cases {
		for _, alg := range []int{0, 1, 4} {
			s := domain.CompressFingerprint(alg, items)
			gotAlg, got, err := domain.DecodeCompressedFingerprint(s)
			if err != nil || gotAlg != alg || !slices.Equal(got, items) {
				t.Fatalf("%s alg %d: round trip = %d, %d items, %v", name, alg, gotAlg, len(got), err)
			}
		}
	}
}

func rawString(items []uint32, signed bool) string {
	f := make([]string, len(items))
	for i, v := range items {
		if signed {
			f[i] = strconv.Itoa(int(int32(v)))
		} else {
			f[i] = strconv.FormatUint(uint64(v), 10)
		}
	}
	return strings.Join(f, ",")
}

func compressedBytes(items []uint32) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(domain.CompressFingerprint(1, items))
	return b
}

func TestParseFingerprintErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	good := randomItems(r, 40)
	goodRaw := rawString(good, false)
	goodBytes := compressedBytes(good)
	b64 := base64.RawURLEncoding.EncodeToString
	withCount := func(n int) string {
		b := slices.Clone(goodBytes)
		b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
		return b64(b)
	}
	// A 16-item fingerprint whose first item sets "bit 38": code 7 + exception 31.
	// Codes 7,0 then 15 × 0 = 17 codes = 51 bits = 7 bytes; exception 31.
	corrupt := []byte{1, 0, 0, 16, 0x07, 0, 0, 0, 0, 0, 0, 31}

	tests := []struct {
		name  string
		in    string
		kind  domain.FingerprintErrorKind
		index int // -2: don't check
		msg   string
	}{
		{"empty", "", domain.FingerprintErrEmpty, -1, "empty"},
		{"blank", "  \t ", domain.FingerprintErrEmpty, -1, "empty"},
		{"prefix only", "FINGERPRINT=", domain.FingerprintErrEmpty, -1, "empty"},
		{"lines without fingerprint", "FILE=a\nDURATION=3", domain.FingerprintErrEmpty, -1, "FINGERPRINT="},
		{"letter in list", goodRaw + ",12a", domain.FingerprintErrBadInteger, 40, "item 40"},
		{"empty item", "1,2,,3", domain.FingerprintErrBadInteger, 2, "item 2"},
		{"trailing comma", goodRaw + ",", domain.FingerprintErrBadInteger, 40, "item 40"},
		{"above uint32", "4294967296," + goodRaw, domain.FingerprintErrBadInteger, 0, "item 0"},
		{"below int32", goodRaw + ",-2147483649", domain.FingerprintErrBadInteger, 40, "item 40"},
		{"float", "1.5," + goodRaw, domain.FingerprintErrBadInteger, 0, "item 0"},
		{"raw too short", rawString(good[:15], false), domain.FingerprintErrTooShort, -1, "15 items"},
		{"raw too long", rawString(randomItems(r, domain.FingerprintMaxItems+1), false), domain.FingerprintErrTooLong, -2, "10001 items"},
		{"text too long", strings.Repeat("A", domain.FingerprintMaxInputBytes+1), domain.FingerprintErrTooLong, -1, "bytes of text"},
		{"bad base64", "AQAA*bc", domain.FingerprintErrBadBase64, 4, "base64"},
		{"short header", b64([]byte{1, 0}), domain.FingerprintErrTruncated, 2, "header"},
		{"header too short count", withCount(3), domain.FingerprintErrTooShort, 1, "declares 3 items"},
		{"header too long count", withCount(1 << 20), domain.FingerprintErrTooLong, 1, "declares 1048576 items"},
		{"count above data", withCount(50), domain.FingerprintErrTruncated, -2, "50 items"},
		{"count below data", withCount(39), domain.FingerprintErrCountMismatch, -2, "39 items end at byte"},
		{"cut exceptions", b64(goodBytes[:len(goodBytes)-1]), domain.FingerprintErrTruncated, -2, "need"},
		{"cut in half", b64(goodBytes[:len(goodBytes)/2]), domain.FingerprintErrTruncated, -2, "ends after"},
		{"trailing byte", b64(append(slices.Clone(goodBytes), 0)), domain.FingerprintErrCountMismatch, len(goodBytes), "end at byte"},
		{"bit beyond 32", b64(corrupt), domain.FingerprintErrCorrupt, -1, "bit 38"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := domain.ParseFingerprint(tc.in)
			if err == nil {
				t.Fatalf("accepted: %d items", len(items))
			}
			if !errors.Is(err, domain.ErrInvalidFingerprint) {
				t.Fatalf("error %v does not wrap ErrInvalidFingerprint", err)
			}
			var fe *domain.FingerprintError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FingerprintError", err)
			}
			if fe.Kind != tc.kind {
				t.Errorf("kind %d, want %d (%v)", fe.Kind, tc.kind, err)
			}
			if tc.index != -2 && fe.Index != tc.index {
				t.Errorf("index %d, want %d (%v)", fe.Index, tc.index, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			if fe.KindName() != "invalid_input" {
				t.Errorf("KindName = %q", fe.KindName())
			}
		})
	}
}

func TestParseAcceptsInt32AndUint32Bounds(t *testing.T) {
	in := "-2147483648,4294967295,2147483647,0," + rawString(make([]uint32, 12), false)
	got := mustParse(t, in)
	want := append([]uint32{0x80000000, 0xffffffff, 0x7fffffff, 0}, make([]uint32, 12)...)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

// naiveSimilarity is the definition, written plainly.
func naiveSimilarity(a, b []uint32, maxOffset int) (uint32, int) {
	minOv := max(domain.FingerprintMinItems, min(len(a), len(b))/2)
	best, bestOff, found := uint32(0), 0, false
	for _, o := range offsetsByRank(maxOffset) {
		n, agree := 0, 0
		for i := range b {
			if j := i + o; j >= 0 && j < len(a) {
				n++
				if bits.OnesCount32(a[j]^b[i]) <= 2 {
					agree++
				}
			}
		}
		if n == 0 || n < minOv {
			continue
		}
		if p := uint32(uint64(agree) * 1e6 / uint64(n)); !found || p > best {
			best, bestOff, found = p, o, true
		}
	}
	return best, bestOff
}

func offsetsByRank(maxOffset int) []int {
	out := []int{0}
	for o := 1; o <= maxOffset; o++ {
		out = append(out, -o, o)
	}
	return out
}

// flip flips k distinct random bits of x.
func flip(r *rand.Rand, x uint32, k int) uint32 {
	for _, b := range r.Perm(32)[:k] {
		x ^= 1 << b
	}
	return x
}

func noisy(r *rand.Rand, items []uint32, maxBits int) []uint32 {
	out := slices.Clone(items)
	for i := range out {
		out[i] = flip(r, out[i], r.IntN(maxBits+1))
	}
	return out
}

func TestFingerprintSimilarity(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a := audioLike(r, 950)
	const M = domain.FingerprintMaxOffset

	check := func(name string, b []uint32, wantPPM uint32, wantOff int) {
		t.Helper()
		ppm, off := domain.FingerprintSimilarity(a, b, M)
		if ppm != wantPPM || off != wantOff {
			t.Errorf("%s: similarity %d at offset %d, want %d at %d", name, ppm, off, wantPPM, wantOff)
		}
		if nppm, noff := naiveSimilarity(a, b, M); nppm != ppm || noff != off {
			t.Errorf("%s: naive says %d at %d", name, nppm, noff)
		}
	}
	check("identical", a, 1e6, 0)
	check("cut +37", a[37:], 1e6, 37)
	check("cut +37 and shortened", a[37:500], 1e6, 37)
	check("delayed 37", append(randomItems(r, 37), a...), 1e6, -37)
	check("cut +120", a[120:], 1e6, 120)
	check("0–2 bits flipped everywhere", noisy(r, a, 2), 1e6, 0)

	// Exactly one item in four off by 3 bits: 750,000 ppm.
	quarter := slices.Clone(a[11:])
	for i := range quarter {
		if i%4 == 0 {
			quarter[i] = flip(r, quarter[i], 3+r.IntN(10))
		}
	}
	n := len(quarter)
	check("a quarter off by 3+ bits", quarter, uint32(uint64(n-(n+3)/4)*1e6/uint64(n)), 11)

	// Out of range: a shift beyond maxOffset is not found.
	if ppm, _ := domain.FingerprintSimilarity(a, a[200:], M); ppm >= domain.FingerprintConflictPPM {
		t.Errorf("a shift of 200 matched at %d ppm", ppm)
	}
	if ppm, off := domain.FingerprintSimilarity(a, a[200:], 200); ppm != 1e6 || off != 200 {
		t.Errorf("with maxOffset 200: %d at %d", ppm, off)
	}
	// A different fingerprint is far below the conflict threshold.
	if ppm, _ := domain.FingerprintSimilarity(a, audioLike(r, 950), M); ppm > 50_000 {
		t.Errorf("a different fingerprint scores %d ppm", ppm)
	}
	// Not enough overlap.
	if ppm, off := domain.FingerprintSimilarity(a, a[:10], M); ppm != 0 || off != 0 {
		t.Errorf("10-item overlap: %d at %d", ppm, off)
	}
	if ppm, _ := domain.FingerprintSimilarity(nil, a, M); ppm != 0 {
		t.Errorf("empty: %d", ppm)
	}
	// Ties go to the smaller |offset|, then the negative one.
	flat := slices.Repeat([]uint32{7}, 100)
	if ppm, off := domain.FingerprintSimilarity(flat, flat[:60], M); ppm != 1e6 || off != 0 {
		t.Errorf("flat: %d at %d", ppm, off)
	}
	if ppm, off := domain.FingerprintSimilarity(flat, append([]uint32{99}, flat[:60]...), M); ppm != 1e6 || off != -1 {
		t.Errorf("flat, one extra item ahead: %d at %d", ppm, off)
	}
}

func TestFingerprintSimilarityAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 300 {
		a := audioLike(r, 16+r.IntN(300))
		var b []uint32
		switch i % 3 {
		case 0:
			b = audioLike(r, 16+r.IntN(300))
		case 1:
			s := r.IntN(len(a) - 8)
			b = noisy(r, a[s:], 4)
		default:
			b = append(randomItems(r, r.IntN(40)), noisy(r, a, 3)...)
		}
		m := r.IntN(150)
		ppm, off := domain.FingerprintSimilarity(a, b, m)
		if nppm, noff := naiveSimilarity(a, b, m); nppm != ppm || noff != off {
			t.Fatalf("case %d: %d at %d, naive %d at %d", i, ppm, off, nppm, noff)
		}
	}
}

func TestFingerprintItemsAgree(t *testing.T) {
	for _, tc := range []struct {
		x, y uint32
		want bool
	}{{0, 0, true}, {0, 1, true}, {0, 0x80000001, true}, {0, 7, false}, {0xffffffff, 0, false}, {5, 6, true}} {
		if got := domain.FingerprintItemsAgree(tc.x, tc.y); got != tc.want {
			t.Errorf("agree(%x, %x) = %v", tc.x, tc.y, got)
		}
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(realCompressed)
	f.Add(realRaw)
	f.Add(realSigned)
	f.Add("FINGERPRINT=" + realCompressed)
	f.Add("AQAAEIGA5DgAAAAAADcD")
	f.Add("1,2,3")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := domain.ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalidFingerprint) {
				t.Fatalf("error %v does not wrap ErrInvalidFingerprint", err)
			}
		} else {
			if len(items) < domain.FingerprintMinItems || len(items) > domain.FingerprintMaxItems {
				t.Fatalf("accepted %d items", len(items))
			}
			for _, form := range []string{domain.CompressFingerprint(1, items), rawString(items, true), rawString(items, false)} {
				again, err := domain.ParseFingerprint(form)
				if err != nil || !slices.Equal(again, items) {
					t.Fatalf("round trip of %q: %v", form, err)
				}
			}
		}
		// Treat the bytes as items, too: compress → parse is the identity.
		b := []byte(s)
		var its []uint32
		for len(b) >= 4 {
			its = append(its, uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
			b = b[4:]
		}
		for len(its) < domain.FingerprintMinItems {
			its = append(its, uint32(len(its))*0x9e3779b9)
		}
		if len(its) <= domain.FingerprintMaxItems {
			got, err := domain.ParseFingerprint(domain.CompressFingerprint(1, its))
			if err != nil || !slices.Equal(got, its) {
				t.Fatalf("compress→parse of %d items: %v", len(its), err)
			}
		}
	})
}

func FuzzFingerprintSimilarity(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), []byte("123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"), uint8(10), uint8(0))
	f.Fuzz(func(t *testing.T, ab, bb []byte, maxOffset, mode uint8) {
		toItems := func(b []byte) []uint32 {
			var out []uint32
			for ; len(b) >= 2; b = b[2:] { // 16-bit values spread: more agreements
				out = append(out, uint32(b[0])<<24|uint32(b[1])<<3)
			}
			return out
		}
		a, b := toItems(ab), toItems(bb)
		if mode%2 == 1 && len(a) > 0 {
			b = append(b, a...) // make a real match likely
		}
		m := int(maxOffset)
		ppm, off := domain.FingerprintSimilarity(a, b, m)
		if ppm > 1e6 || off < -m || off > m {
			t.Fatalf("out of range: %d at %d", ppm, off)
		}
		if nppm, noff := naiveSimilarity(a, b, m); nppm != ppm || noff != off {
			t.Fatalf("%d at %d, naive %d at %d", ppm, off, nppm, noff)
		}
	})
}
