package domain

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/fanfare/fanfare/internal/platform/apperr"
)

// Chromaprint fingerprints.
//
// A Chromaprint fingerprint is a sequence of 32-bit items ("sub-fingerprints"),
// about 7.5–8 per second of audio; fpcalc fingerprints the first 120 s by
// default (~950 items). fpcalc prints it in one of two forms, both accepted by
// ParseFingerprint:
//
//   - raw (`fpcalc -raw`): `FINGERPRINT=<comma-separated integers>`, printed
//     as unsigned uint32 or, by some versions and with `-signed`, as int32;
//   - compressed (the default): URL-safe base64 without padding of
//     chromaprint's compressed format, see CompressFingerprint.

const (
	// FingerprintMinItems is the fewest items a fingerprint may have (~2 s).
	FingerprintMinItems = 16
	// FingerprintMaxItems is the most items a fingerprint may have (~20 min).
	FingerprintMaxItems = 10_000
	// FingerprintMaxInputBytes caps the text ParseFingerprint looks at.
	FingerprintMaxInputBytes = 256 << 10

	// FingerprintAgreeBits is how many bits two items may differ in and still
	// agree.
	FingerprintAgreeBits = 2
	// FingerprintMaxOffset is the alignment search range, in items, either way.
	FingerprintMaxOffset = 120
	// FingerprintConflictPPM is the similarity (parts per million) from which
	// two fingerprints are the same recording: 0.70.
	FingerprintConflictPPM uint32 = 700_000

	fingerprintPPM = 1_000_000
)

// ErrInvalidFingerprint is wrapped by every error about a malformed
// fingerprint.
var ErrInvalidFingerprint = errors.New("invalid fingerprint")

// FingerprintErrorKind says what is wrong with a fingerprint.
type FingerprintErrorKind int

// The kinds of FingerprintError.
const (
	// FingerprintErrEmpty: no fingerprint given.
	FingerprintErrEmpty FingerprintErrorKind = iota + 1
	// FingerprintErrBadInteger: a raw item is not a 32-bit integer.
	FingerprintErrBadInteger
	// FingerprintErrBadBase64: the compressed form is not URL-safe base64.
	FingerprintErrBadBase64
	// FingerprintErrTruncated: compressed data ends before all items.
	FingerprintErrTruncated
	// FingerprintErrCountMismatch: compressed data holds more than the
	// header's item count.
	FingerprintErrCountMismatch
	// FingerprintErrCorrupt: compressed data decodes to an impossible item.
	FingerprintErrCorrupt
	// FingerprintErrTooLong: more than FingerprintMaxItems items, or more
	// than FingerprintMaxInputBytes of text.
	FingerprintErrTooLong
	// FingerprintErrTooShort: fewer than FingerprintMinItems items.
	FingerprintErrTooShort
)

// FingerprintError describes a malformed fingerprint. It wraps
// ErrInvalidFingerprint.
type FingerprintError struct {
	Kind FingerprintErrorKind
	// Index is the item (raw form, counting from 0) or byte (compressed
	// form) where the problem is, or -1.
	Index int
	// Detail is a human-readable explanation.
	Detail string
}

func (e *FingerprintError) Error() string {
	return "invalid fingerprint: " + e.Detail
}

// Unwrap makes errors.Is(err, ErrInvalidFingerprint) hold.
func (e *FingerprintError) Unwrap() error { return ErrInvalidFingerprint }

// KindName is apperr.InvalidInput: the caller sent a bad fingerprint.
func (e *FingerprintError) KindName() string { return apperr.InvalidInput }

func fpErr(kind FingerprintErrorKind, index int, format string, args ...any) error {
	return &FingerprintError{Kind: kind, Index: index, Detail: fmt.Sprintf(format, args...)}
}

// ParseFingerprint decodes a Chromaprint fingerprint as printed by fpcalc,
// raw or compressed, with or without the `FINGERPRINT=` prefix (a whole
// fpcalc text output, with its DURATION= line, is accepted too). It returns
// the items. Errors are *FingerprintError wrapping ErrInvalidFingerprint.
func ParseFingerprint(s string) ([]uint32, error) {
	items, _, err := parseFingerprint(s)
	return items, err
}

// DecodeCompressedFingerprint decodes the compressed (base64) form only and
// also returns the algorithm byte (fpcalc's default algorithm 2 is stored as
// 1). The `FINGERPRINT=` prefix is accepted.
func DecodeCompressedFingerprint(s string) (algorithm int, items []uint32, err error) {
	s, err = fingerprintText(s)
	if err != nil {
		return 0, nil, err
	}
	return decodeCompressed(s)
}

func parseFingerprint(s string) ([]uint32, int, error) {
	s, err := fingerprintText(s)
	if err != nil {
		return nil, 0, err
	}
	if isRawFingerprint(s) {
		items, err := parseRaw(s)
		return items, -1, err
	}
	alg, items, err := decodeCompressed(s)
	return items, alg, err
}

// fingerprintText trims s to the fingerprint itself.
func fingerprintText(s string) (string, error) {
	if len(s) > FingerprintMaxInputBytes {
		return "", fpErr(FingerprintErrTooLong, -1, "%d bytes of text, more than the %d allowed", len(s), FingerprintMaxInputBytes)
	}
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\r\n") {
		// fpcalc's text output: pick the FINGERPRINT= line.
		found := false
		for line := range strings.Lines(s) {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "FINGERPRINT=") {
				s, found = line, true
				break
			}
		}
		if !found {
			return "", fpErr(FingerprintErrEmpty, -1, "several lines but none starts with FINGERPRINT=")
		}
	}
	s = strings.TrimSpace(strings.TrimPrefix(s, "FINGERPRINT="))
	if s == "" {
		return "", fpErr(FingerprintErrEmpty, -1, "empty")
	}
	return s, nil
}

// isRawFingerprint: a list of integers has commas, or only digits and signs.
func isRawFingerprint(s string) bool {
	if strings.IndexByte(s, ',') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func parseRaw(s string) ([]uint32, error) {
	n := strings.Count(s, ",") + 1
	if n > FingerprintMaxItems {
		return nil, fpErr(FingerprintErrTooLong, FingerprintMaxItems, "%d items, more than the %d allowed", n, FingerprintMaxItems)
	}
	items := make([]uint32, 0, n)
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil || v < -1<<31 || v > 1<<32-1 {
			if len(f) > 24 {
				f = f[:24] + "…"
			}
			return nil, fpErr(FingerprintErrBadInteger, i, "item %d (counting from 0) is %q, not a signed or unsigned 32-bit integer", i, f)
		}
		items = append(items, uint32(v)) // int32 values wrap to their uint32 bits
	}
	if n < FingerprintMinItems {
		return nil, fpErr(FingerprintErrTooShort, -1, "%d items, fewer than the %d required", n, FingerprintMinItems)
	}
	return items, nil
}

// The compressed format (chromaprint's fingerprint_compressor.cpp):
//
//	byte 0       algorithm
//	bytes 1..3   item count, big-endian
//	normal codes one 3-bit code per entry, packed least significant bit first
//	exceptions   one 5-bit code per normal code of 7, packed the same way
//
// Item i is XORed with item i-1 (item 0 as is); the set bits of that delta
// are written from the lowest up as the distance (1..32) from the previous
// set bit (or from bit "0" before bit 1), then a 0 ends the item. A distance
// of 7 or more is written as the normal code 7 plus the exception code
// distance-7.
const (
	fpNormalBits     = 3
	fpExceptionBits  = 5
	fpMaxNormalValue = 1<<fpNormalBits - 1
)

// CompressFingerprint encodes items in chromaprint's compressed format, as
// URL-safe base64 without padding — what fpcalc prints by default. algorithm
// is stored in the first byte (fpcalc's default algorithm 2 is stored as 1).
// At most 2^24-1 items can be encoded; more are cut off.
func CompressFingerprint(algorithm int, items []uint32) string {
	if len(items) > 1<<24-1 {
		items = items[:1<<24-1]
	}
	normal := make([]byte, 0, len(items)*8)
	var exceptions []byte
	var prev uint32
	for _, it := range items {
		d := it ^ prev
		prev = it
		last := 0
		for d != 0 {
			b := bits.TrailingZeros32(d) + 1 // 1-based bit position
			v := b - last
			if v >= fpMaxNormalValue {
				normal = append(normal, fpMaxNormalValue)
				exceptions = append(exceptions, byte(v-fpMaxNormalValue))
			} else {
				normal = append(normal, byte(v))
			}
			last = b
			d &= d - 1
		}
		normal = append(normal, 0)
	}
	out := make([]byte, 4, 4+packedLen(len(normal), fpNormalBits)+packedLen(len(exceptions), fpExceptionBits))
	n := len(items)
	out[0], out[1], out[2], out[3] = byte(algorithm), byte(n>>16), byte(n>>8), byte(n)
	out = packCodes(out, normal, fpNormalBits)
	out = packCodes(out, exceptions, fpExceptionBits)
	return base64.RawURLEncoding.EncodeToString(out)
}

func packedLen(codes, width int) int { return (codes*width + 7) / 8 }

// packCodes appends codes of width bits each, least significant bit first.
func packCodes(dst, codes []byte, width uint) []byte {
	var acc uint32
	var n uint
	for _, c := range codes {
		acc |= uint32(c) << n
		n += width
		for n >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	if n > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// codeReader reads fixed-width codes packed least significant bit first.
type codeReader struct {
	data  []byte
	width uint
	pos   int // next code index
}

func (r *codeReader) remaining() int { return len(r.data)*8/int(r.width) - r.pos }

func (r *codeReader) next() byte {
	bit := r.pos * int(r.width)
	r.pos++
	i, sh := bit/8, uint(bit%8)
	v := uint16(r.data[i])
	if i+1 < len(r.data) {
		v |= uint16(r.data[i+1]) << 8
	}
	return byte(v>>sh) & (1<<r.width - 1)
}

func decodeCompressed(s string) (int, []uint32, error) {
	enc := base64.RawURLEncoding
	if strings.ContainsAny(s, "+/") {
		enc = base64.RawStdEncoding // tolerate the standard alphabet
	}
	data, err := enc.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		var ce base64.CorruptInputError
		at := -1
		if errors.As(err, &ce) {
			at = int(ce)
		}
		return 0, nil, fpErr(FingerprintErrBadBase64, at, "neither a list of integers nor URL-safe base64 (bad character or length at offset %d)", at)
	}
	if len(data) < 4 {
		return 0, nil, fpErr(FingerprintErrTruncated, len(data), "compressed data is %d bytes, shorter than its 4-byte header", len(data))
	}
	alg := int(data[0])
	count := int(data[1])<<16 | int(data[2])<<8 | int(data[3])
	if count > FingerprintMaxItems {
		return 0, nil, fpErr(FingerprintErrTooLong, 1, "header declares %d items, more than the %d allowed", count, FingerprintMaxItems)
	}
	if count < FingerprintMinItems {
		return 0, nil, fpErr(FingerprintErrTooShort, 1, "header declares %d items, fewer than the %d required", count, FingerprintMinItems)
	}
	body := data[4:]

	// Pass 1: find the normal codes of count items and count exceptions.
	nr := codeReader{data: body, width: fpNormalBits}
	found, exc := 0, 0
	for found < count {
		if nr.remaining() <= 0 {
			return 0, nil, fpErr(FingerprintErrTruncated, len(data), "compressed data ends after %d of the %d items its header declares", found, count)
		}
		switch nr.next() {
		case 0:
			found++
		case fpMaxNormalValue:
			exc++
		}
	}
	normalCodes := nr.pos
	excStart := packedLen(normalCodes, fpNormalBits)
	want := excStart + packedLen(exc, fpExceptionBits)
	if len(body) < want {
		return 0, nil, fpErr(FingerprintErrTruncated, len(data), "compressed data is %d bytes, its %d items need %d", len(data), count, 4+want)
	}
	if len(body) > want {
		return 0, nil, fpErr(FingerprintErrCountMismatch, 4+want, "compressed data is %d bytes but its header's %d items end at byte %d", len(data), count, 4+want)
	}

	// Pass 2: rebuild the items.
	nr = codeReader{data: body[:excStart], width: fpNormalBits}
	er := codeReader{data: body[excStart:], width: fpExceptionBits}
	items := make([]uint32, 0, count)
	var value uint32
	last := 0
	for i := 0; i < normalCodes; i++ {
		c := int(nr.next())
		if c == 0 {
			items = append(items, value)
			last = 0
			continue
		}
		if c == fpMaxNormalValue {
			c += int(er.next())
		}
		last += c
		if last > 32 {
			return 0, nil, fpErr(FingerprintErrCorrupt, -1, "item %d of the compressed data sets bit %d of a 32-bit item", len(items), last)
		}
		value ^= 1 << (last - 1)
	}
	return alg, items, nil
}

// FingerprintItemsAgree reports whether two items differ in at most
// FingerprintAgreeBits bits.
func FingerprintItemsAgree(x, y uint32) bool {
	d := x ^ y
	d &= d - 1 // clear the lowest set bit twice: zero iff popcount <= 2
	d &= d - 1
	return d == 0
}

// FingerprintMinOverlap is the fewest overlapping items an alignment of
// fingerprints of lengths la and lb must have to count: half the shorter
// one, and at least FingerprintMinItems.
func FingerprintMinOverlap(la, lb int) int {
	return max(FingerprintMinItems, min(la, lb)/2)
}

// FingerprintSimilarity compares two fingerprints. For each alignment
// offset o in [-maxOffset, maxOffset] — item b[i] against a[i+o] — whose
// overlap has at least FingerprintMinOverlap items, the similarity is the
// share of overlapping items that agree (FingerprintItemsAgree), in parts per
// million, rounded down. The best alignment wins; ties go to the smaller
// |offset|, then to the negative one. It returns 0, 0 when no alignment has
// enough overlap. So if b is a cut from a starting at a's item 37, it
// returns 1_000_000, 37.
func FingerprintSimilarity(a, b []uint32, maxOffset int) (ppm uint32, offset int) {
	ppm, offset, _ = bestAlignment(a, b, maxOffset, 0, 0, false)
	return ppm, offset
}

// offsetRank orders offsets 0, -1, 1, -2, 2, …: earlier wins ties.
func offsetRank(o int) int {
	if o < 0 {
		return -2*o - 1
	}
	return 2 * o
}

// bestAlignment is FingerprintSimilarity that ignores alignments below
// floorPPM (ok is false when none reaches it) and, when useHint, tries
// offset hint first; neither changes the answer, only how fast it comes.
func bestAlignment(a, b []uint32, maxOffset int, floorPPM uint32, hint int, useHint bool) (ppm uint32, offset int, ok bool) {
	if len(a) == 0 || len(b) == 0 || maxOffset < 0 {
		return 0, 0, false
	}
	minOv := FingerprintMinOverlap(len(a), len(b))
	best, bestOff, found := floorPPM, 0, false
	try := func(o int) {
		// overlap: i in [max(0,-o), min(len(b), len(a)-o))
		lo, hi := max(0, -o), min(len(b), len(a)-o)
		n := hi - lo
		if n < minOv || n <= 0 {
			return
		}
		// agreements needed to reach best: ceil(best*n/1e6)
		need := int((uint64(best)*uint64(n) + fingerprintPPM - 1) / fingerprintPPM)
		allowed := n - need // disagreements we can afford
		if allowed < 0 {
			return
		}
		bb, aa := b[lo:hi], a[lo+o:hi+o]
		miss := 0
		for i, x := range bb {
			d := x ^ aa[i]
			d &= d - 1
			d &= d - 1
			if d != 0 {
				miss++
				if miss > allowed {
					return
				}
			}
		}
		p := uint32(uint64(n-miss) * fingerprintPPM / uint64(n))
		if !found || p > best || (p == best && offsetRank(o) < offsetRank(bestOff)) {
			if p >= best {
				best, bestOff, found = p, o, true
			}
		}
	}
	if useHint && hint >= -maxOffset && hint <= maxOffset {
		try(hint)
	}
	for r := 0; r <= 2*maxOffset; r++ {
		o := (r + 1) / 2
		if r%2 == 1 {
			o = -o
		}
		if useHint && o == hint {
			continue
		}
		try(o)
	}
	if !found {
		return 0, 0, false
	}
	return best, bestOff, true
}
