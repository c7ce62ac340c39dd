package domain

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
)

// PPM is one whole in parts per million: split shares sum to exactly this.
const PPM = 1_000_000

// Limits on a description's fields; a registrar must bound what it signs
// and stores.
const (
	MaxTextLen    = 512   // title, album, genre, copyright holder, ...
	MaxNotesLen   = 16384 // liner notes, message of the day
	MaxListLen    = 64    // artists, splits, protocols, policy hops
	MaxDurationMS = 24 * 60 * 60 * 1000
)

// ValidateDescription checks the rules of a description version (DESIGN §3
// and §6): a GUID song id, a title, a positive duration, a 32-byte content
// hash, a fingerprint, splits that sum to exactly 1,000,000 ppm with
// distinct payees, a valid price when set and a distributor policy that fits
// the price. Errors wrap ErrInvalidDescription and say which field is wrong.
func ValidateDescription(d *eventsv1.SongDescription) error {
	if d == nil {
		return invalid("no description")
	}
	if _, err := uuid.Parse(d.SongId); err != nil {
		return invalid("song id %q is not a GUID", d.SongId)
	}
	for name, v := range map[string]string{"title": d.Title, "album": d.Album, "genre": d.Genre, "format": d.Format,
		"copyright holder": d.CopyrightHolder, "metadata url": d.MetadataUrl, "artist id": d.ArtistId} {
		if err := text(name, v, MaxTextLen); err != nil {
			return err
		}
	}
	for name, v := range map[string]string{"liner notes": d.LinerNotes, "message of the day": d.MessageOfTheDay} {
		if err := text(name, v, MaxNotesLen); err != nil {
			return err
		}
	}
	if strings.TrimSpace(d.Title) == "" {
		return invalid("title is empty")
	}
	if d.ArtistId == "" {
		return invalid("artist id is empty")
	}
	if d.DurationMs == 0 {
		return invalid("duration must be positive")
	}
	if d.DurationMs > MaxDurationMS {
		return invalid("duration %d ms is longer than a day", d.DurationMs)
	}
	if len(d.ContentHash) != 32 {
		return invalid("content hash must be a SHA-256 (32 bytes), got %d bytes", len(d.ContentHash))
	}
	if len(d.Fingerprint) < FingerprintMinItems {
		return invalid("fingerprint has %d items, need at least %d", len(d.Fingerprint), FingerprintMinItems)
	}
	if len(d.Artists) > MaxListLen || len(d.PaymentProtocols) > MaxListLen {
		return invalid("at most %d artists and payment protocols", MaxListLen)
	}
	for i, a := range d.Artists {
		if err := text(fmt.Sprintf("artist %d", i+1), a, MaxTextLen); err != nil {
			return err
		}
		if strings.TrimSpace(a) == "" {
			return invalid("artist %d is empty", i+1)
		}
	}
	for i, p := range d.PaymentProtocols {
		if err := text(fmt.Sprintf("payment protocol %d", i+1), p, MaxTextLen); err != nil {
			return err
		}
		if !strings.Contains(p, ":") {
			return invalid("payment protocol %d (%q) is not a URI", i+1, p)
		}
	}
	if err := ValidateSplits(d.Splits); err != nil {
		return err
	}
	if d.Price != nil && d.Price.Units <= 0 {
		return invalid("price must be positive (leave it unset when the song is not for sale)")
	}
	return validatePolicy(d.DistributorPolicy, d.Price)
}

func text(name, v string, max int) error {
	if len(v) > max {
		return invalid("%s is longer than %d bytes", name, max)
	}
	if !utf8.ValidString(v) {
		return invalid("%s is not valid UTF-8", name)
	}
	return nil
}

// ValidateSplits checks a split list: 1 to MaxListLen distinct payees
// with positive shares summing to exactly PPM. Errors: InvalidInput.
func ValidateSplits(splits []*eventsv1.Split) error {
	if len(splits) == 0 {
		return invalid("splits are empty: name at least one payee with 100%%")
	}
	if len(splits) > MaxListLen {
		return invalid("at most %d splits", MaxListLen)
	}
	seen := map[string]bool{}
	var sum uint64
	for i, s := range splits {
		if s.PayeeId == "" || len(s.PayeeId) > 128 || !utf8.ValidString(s.PayeeId) {
			return invalid("split %d: payee id must be 1–128 bytes of UTF-8", i+1)
		}
		if seen[s.PayeeId] {
			return invalid("split %d: payee %s appears twice", i+1, s.PayeeId)
		}
		seen[s.PayeeId] = true
		if s.SharePpm == 0 {
			return invalid("split %d: share of %s must be positive", i+1, s.PayeeId)
		}
		sum += uint64(s.SharePpm)
	}
	if sum != PPM {
		return invalid("splits sum to %s%%, not exactly 100%%", ppmPercent(sum))
	}
	return nil
}

func validatePolicy(p *eventsv1.DistributorPolicy, price *eventsv1.Money) error {
	if p == nil || p.Mode == eventsv1.DistributorPolicy_MODE_NONE || p.Mode == eventsv1.DistributorPolicy_MODE_UNSPECIFIED {
		if p != nil && (len(p.FixedUnits) > 0 || len(p.PercentPpm) > 0) {
			return invalid("distributor policy none takes no amounts")
		}
		return nil
	}
	if p.Payer != eventsv1.DistributorPolicy_PAYER_HOLDER && p.Payer != eventsv1.DistributorPolicy_PAYER_PURCHASER {
		return invalid("distributor policy needs a payer: holder or purchaser")
	}
	if price == nil {
		return invalid("a distributor policy needs a price")
	}
	var total uint64
	switch p.Mode {
	case eventsv1.DistributorPolicy_MODE_FIXED:
		if len(p.PercentPpm) > 0 || len(p.FixedUnits) == 0 || len(p.FixedUnits) > MaxListLen {
			return invalid("distributor policy fixed needs 1–%d per-hop amounts and no percentages", MaxListLen)
		}
		for i, u := range p.FixedUnits {
			if u <= 0 {
				return invalid("distributor policy: hop %d amount must be positive", i+1)
			}
			total += uint64(u)
		}
		if p.Payer == eventsv1.DistributorPolicy_PAYER_HOLDER && total > uint64(price.Units) {
			return invalid("distributor policy: fixed amounts paid by the holder exceed the price")
		}
	case eventsv1.DistributorPolicy_MODE_PERCENT:
		if len(p.FixedUnits) > 0 || len(p.PercentPpm) == 0 || len(p.PercentPpm) > MaxListLen {
			return invalid("distributor policy percent needs 1–%d per-hop percentages and no amounts", MaxListLen)
		}
		for i, u := range p.PercentPpm {
			if u == 0 {
				return invalid("distributor policy: hop %d percentage must be positive", i+1)
			}
			total += uint64(u)
		}
		if p.Payer == eventsv1.DistributorPolicy_PAYER_HOLDER && total > PPM {
			return invalid("distributor policy: percentages paid by the holder exceed 100%%")
		}
	default:
		return invalid("unknown distributor policy mode %v", p.Mode)
	}
	return nil
}

// ppmPercent formats parts per million as a percentage ("33.3334").
func ppmPercent(ppm uint64) string {
	s := strconv.FormatUint(ppm/10000, 10)
	if frac := ppm % 10000; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%04d", frac), "0")
	}
	return s
}

// canonicalHeader starts every signed description; the version of the
// encoding is part of what is signed.
const canonicalHeader = "fanfare song description v1\n"

// Canonical is the byte encoding the registrar signs: a header, then one
// "name: value" line per field in a fixed order, values quoted with Go
// syntax (so any byte is unambiguous), repeated fields one line per item.
// It depends only on the description and version, so any peer can rebuild
// it, and it never changes for a recorded version.
func Canonical(d *eventsv1.SongDescription, version uint64) []byte {
	var b strings.Builder
	b.WriteString(canonicalHeader)
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteByte('\n')
	}
	q := strconv.Quote
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	line("song_id", q(d.SongId))
	line("version", u(version))
	line("artist_id", q(d.ArtistId))
	line("title", q(d.Title))
	for _, a := range d.Artists {
		line("artist", q(a))
	}
	line("album", q(d.Album))
	line("track", u(uint64(d.Track)))
	line("genre", q(d.Genre))
	line("year", u(uint64(d.Year)))
	line("duration_ms", u(d.DurationMs))
	line("liner_notes", q(d.LinerNotes))
	line("format", q(d.Format))
	line("content_hash", fmt.Sprintf("%x", d.ContentHash))
	fp := make([]string, len(d.Fingerprint))
	for i, v := range d.Fingerprint {
		fp[i] = strconv.FormatUint(uint64(v), 10)
	}
	line("fingerprint", strings.Join(fp, ","))
	for _, s := range d.Splits {
		line("split", q(s.PayeeId)+" "+u(uint64(s.SharePpm)))
	}
	line("copyright_holder", q(d.CopyrightHolder))
	if d.Price != nil {
		line("price", q(d.Price.Asset)+" "+strconv.FormatInt(d.Price.Units, 10))
	}
	if p := d.DistributorPolicy; p != nil {
		line("distributor_mode", p.Mode.String())
		line("distributor_payer", p.Payer.String())
		for _, v := range p.FixedUnits {
			line("distributor_fixed", strconv.FormatInt(v, 10))
		}
		for _, v := range p.PercentPpm {
			line("distributor_percent_ppm", u(uint64(v)))
		}
	}
	line("metadata_url", q(d.MetadataUrl))
	line("message_of_the_day", q(d.MessageOfTheDay))
	for _, p := range d.PaymentProtocols {
		line("payment_protocol", q(p))
	}
	return []byte(b.String())
}

// SignDescription signs the canonical bytes of a version.
func SignDescription(key ed25519.PrivateKey, d *eventsv1.SongDescription, version uint64) []byte {
	return ed25519.Sign(key, Canonical(d, version))
}

// ErrBadSignature: canonical bytes and signature do not verify.
var ErrBadSignature = errors.New("signature does not verify with the registrar's key")

// VerifyCanonical checks a signature over canonical bytes, as a peer does
// offline, and that the bytes are a canonical description.
func VerifyCanonical(pub ed25519.PublicKey, canonical, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("registrar public key must be %d bytes, got %d", ed25519.PublicKeySize, len(pub))
	}
	if !strings.HasPrefix(string(canonical), canonicalHeader) {
		return fmt.Errorf("not a canonical song description (header %q missing)", strings.TrimSpace(canonicalHeader))
	}
	if !ed25519.Verify(pub, canonical, sig) {
		return ErrBadSignature
	}
	return nil
}
