package domain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	"unicode/utf8"

	"golang.org/x/crypto/nacl/box"
)

// Bounds of a token; see the package documentation for the wire format.
const (
	// DefaultMaxHops is the most layers (root included) a token may have:
	// Extend refuses to add a layer to a token that has this many, and
	// Resolve rejects longer tokens unless told otherwise.
	DefaultMaxHops = 16
	// MaxTokenSize bounds a token in bytes (a 16-layer token with the
	// longest ids is under 7 KiB).
	MaxTokenSize = 64 << 10
	// MaxIDLen bounds token, song and distributor ids in bytes.
	MaxIDLen = 128
)

// Wire constants.
const (
	magic      = "FRT1"
	headerLen  = len(magic) + 2 // magic, kind, hops
	kindRoot   = 0x01
	kindHop    = 0x02
	sigLen     = ed25519.SignatureSize
	rootCtx    = "fanfare/referral-root/v1\x00"
	hopCtx     = "fanfare/referral-hop/v1\x00"
	maxTextLen = (MaxTokenSize*8 + 5) / 6 // base64 (no padding) of MaxTokenSize bytes
)

// ServiceKeys are the chains service's keys: Sign (Ed25519) signs root
// tokens; the box key pair (X25519) opens the sealed hops. Derive them with
// [DeriveServiceKeys].
type ServiceKeys struct {
	Sign                  ed25519.PrivateKey
	BoxPublic, BoxPrivate *[32]byte
}

// PublicKeys are what distributors need of the service: Sign verifies roots
// (nobody but the service has to), Box is the key hops are sealed to.
type PublicKeys struct {
	Sign ed25519.PublicKey
	Box  *[32]byte
}

// BoxPurpose names the chains service's box key derivation.
const BoxPurpose = "fanfare/chains/v1"

// DeriveServiceKeys returns the service keys of an Ed25519 private key: the
// box key pair is sealbox.Derive(seed, BoxPurpose), so one key file holds
// both. Like crypto/ed25519, it panics if len(seed) is not
// ed25519.PrivateKeySize.
func DeriveServiceKeys(seed ed25519.PrivateKey) ServiceKeys {
	if len(seed) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("chains: bad Ed25519 private key length %d", len(seed)))
	}
	box := sealbox.Derive(seed, BoxPurpose)
	return ServiceKeys{Sign: seed, BoxPublic: box.Public, BoxPrivate: box.Private}
}

// Public returns the public halves of the keys.
func (k ServiceKeys) Public() PublicKeys {
	var p PublicKeys
	if len(k.Sign) == ed25519.PrivateKeySize {
		p.Sign = k.Sign.Public().(ed25519.PublicKey)
	}
	if k.BoxPublic != nil {
		b := *k.BoxPublic
		p.Box = &b
	}
	return p
}

// IssueRoot returns a root token: the first layer of every token, naming
// the song and the first distributor, signed by the service. Errors:
// ErrInvalidArgument (an id empty, over MaxIDLen bytes or not UTF-8; no
// signing key).
func IssueRoot(k ServiceKeys, tokenID, songID, distributorID string) ([]byte, error) {
	if len(k.Sign) != ed25519.PrivateKeySize {
		return nil, fail(ErrInvalidArgument, "no service signing key")
	}
	for _, f := range [...]struct{ name, v string }{{"token id", tokenID}, {"song id", songID}, {"distributor id", distributorID}} {
		if err := checkID(f.v); err != nil {
			return nil, fail(ErrInvalidArgument, "%s %s", f.name, err)
		}
	}
	b := make([]byte, 0, headerLen+3+len(tokenID)+len(songID)+len(distributorID)+sigLen)
	b = append(b, magic...)
	b = append(b, kindRoot, 1)
	b = appendStr(b, tokenID)
	b = appendStr(b, songID)
	b = appendStr(b, distributorID)
	return append(b, ed25519.Sign(k.Sign, rootMessage(b))...), nil
}

// Extend returns prev with one more layer naming distributorID: the hop
// {distributorID, songID, signature, prev}, sealed with an anonymous box
// (fresh randomness from crypto/rand) to service.Box, behind a cleartext
// header. The signature is Ed25519 by distributorKey over
// "fanfare/referral-hop/v1\x00" || SHA-256(prev) || songID ||
// distributorID (ids length-prefixed); it covers the distributor id too, so
// a hop cannot be relabelled to another id registered with the same key.
// Extending needs no server: the extender cannot read prev (except a bare
// root, whose song id it checks), only its header's layer count.
//
// Errors: ErrInvalidArgument (a bad id, distributor key or service key),
// ErrMalformed (prev is not a token, or the result would exceed
// MaxTokenSize), ErrTooManyHops (prev already has DefaultMaxHops layers),
// ErrSongMismatch (prev is a root for another song).
func Extend(prev []byte, songID, distributorID string, distributorKey ed25519.PrivateKey, service PublicKeys) ([]byte, error) {
	if err := checkID(songID); err != nil {
		return nil, fail(ErrInvalidArgument, "song id %s", err)
	}
	if err := checkID(distributorID); err != nil {
		return nil, fail(ErrInvalidArgument, "distributor id %s", err)
	}
	if len(distributorKey) != ed25519.PrivateKeySize {
		return nil, fail(ErrInvalidArgument, "distributor key is not an Ed25519 private key")
	}
	if service.Box == nil {
		return nil, fail(ErrInvalidArgument, "no service box key")
	}
	kind, hops, err := header(prev)
	if err != nil {
		return nil, err
	}
	if hops >= DefaultMaxHops {
		return nil, fail(ErrTooManyHops, "the token already has %d layers, the most allowed", hops)
	}
	if kind == kindRoot {
		r, err := decodeRoot(prev)
		if err != nil {
			return nil, err
		}
		if r.songID != songID {
			return nil, fail(ErrSongMismatch, "the root is for song %q, not %q", r.songID, songID)
		}
	}
	// Bound before sealing: header + box overhead + plaintext.
	plainLen := 2 + len(distributorID) + len(songID) + sigLen + 4 + len(prev)
	if headerLen+box.AnonymousOverhead+plainLen > MaxTokenSize {
		return nil, fail(ErrMalformed, "the extended token would exceed %d bytes", MaxTokenSize)
	}
	plain := make([]byte, 0, plainLen)
	plain = appendStr(plain, distributorID)
	plain = appendStr(plain, songID)
	plain = append(plain, ed25519.Sign(distributorKey, hopMessage(prev, songID, distributorID))...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(prev)))
	plain = append(plain, prev...)
	out := make([]byte, 0, headerLen+box.AnonymousOverhead+plainLen)
	out = append(out, magic...)
	out = append(out, kindHop, byte(hops+1))
	return box.SealAnonymous(out, plain, service.Box, nil)
}

// Hops returns the number of layers of a token (root included) as its
// cleartext header states it. Anyone can read it; only Resolve checks that it
// is true. Errors: ErrMalformed.
func Hops(token []byte) (int, error) {
	_, n, err := header(token)
	return n, err
}

// EncodeToken returns the text form of a token: URL-safe base64 without
// padding.
func EncodeToken(token []byte) string { return base64.RawURLEncoding.EncodeToString(token) }

// ParseTokenText parses the text form of a token (surrounding white space
// ignored) and checks its header. It accepts only the canonical encoding, so
// EncodeToken(ParseTokenText(s)) == s for trimmed s. Errors: ErrMalformed.
func ParseTokenText(s string) ([]byte, error) {
	s = trimSpace(s)
	if len(s) > maxTextLen {
		return nil, fail(ErrMalformed, "token text of %d characters exceeds %d", len(s), maxTextLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fail(ErrMalformed, "token text has %q at %d (want URL-safe base64 without padding)", c, i)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fail(ErrMalformed, "token text: %v", err)
	}
	if _, _, err := header(b); err != nil {
		return nil, err
	}
	return b, nil
}

func trimSpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// header checks a token's size and cleartext header and returns its kind
// and stated layer count. Errors: ErrMalformed.
func header(t []byte) (kind byte, hops int, err error) {
	switch {
	case len(t) > MaxTokenSize:
		return 0, 0, fail(ErrMalformed, "%d bytes exceed %d", len(t), MaxTokenSize)
	case len(t) < headerLen || string(t[:len(magic)]) != magic:
		return 0, 0, fail(ErrMalformed, "not a referral token (no %s header)", magic)
	}
	kind, hops = t[len(magic)], int(t[len(magic)+1])
	switch {
	case kind != kindRoot && kind != kindHop:
		return 0, 0, fail(ErrMalformed, "unknown layer kind %#x", kind)
	case kind == kindRoot && hops != 1, kind == kindHop && hops < 2:
		return 0, 0, fail(ErrMalformed, "a %s layer cannot head %d layers", kindName(kind), hops)
	}
	return kind, hops, nil
}

func kindName(k byte) string {
	if k == kindRoot {
		return "root"
	}
	return "hop"
}

// checkID says what is wrong with an id, or nil.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("has %d bytes, more than %d", len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return errors.New("is not UTF-8")
	}
	return nil
}

// appendStr appends a length-prefixed id (the caller has checked it).
func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// rootMessage is what the service signs: the context string and the root
// layer up to its signature (header included).
func rootMessage(unsigned []byte) []byte {
	return append([]byte(rootCtx), unsigned...)
}

// hopMessage is what a distributor signs.
func hopMessage(prev []byte, songID, distributorID string) []byte {
	h := sha256.Sum256(prev)
	m := make([]byte, 0, len(hopCtx)+len(h)+2+len(songID)+len(distributorID))
	m = append(m, hopCtx...)
	m = append(m, h[:]...)
	m = appendStr(m, songID)
	return appendStr(m, distributorID)
}

// reader decodes length-prefixed fields; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fail(ErrMalformed, format, args...)
	}
}

func (r *reader) str(name string) string {
	if r.err != nil {
		return ""
	}
	if len(r.b) < 1 || len(r.b) < 1+int(r.b[0]) {
		r.fail("%s runs past the end", name)
		return ""
	}
	n := int(r.b[0])
	s := string(r.b[1 : 1+n])
	r.b = r.b[1+n:]
	if err := checkID(s); err != nil {
		r.fail("%s %s", name, err)
		return ""
	}
	return s
}

func (r *reader) bytes(name string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("%s runs past the end", name)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes after the %s", len(r.b), what)
	}
}

// root is a decoded root layer.
type root struct {
	tokenID, songID, distributorID string
	sig, signed                    []byte
}

// decodeRoot decodes a root layer whose header was checked. Errors:
// ErrMalformed.
func decodeRoot(t []byte) (root, error) {
	r := reader{b: t[headerLen:]}
	var x root
	x.tokenID = r.str("token id")
	x.songID = r.str("song id")
	x.distributorID = r.str("distributor id")
	signedLen := len(t) - len(r.b)
	x.sig = r.bytes("signature", sigLen)
	r.end("root")
	if r.err != nil {
		return root{}, r.err
	}
	x.signed = t[:signedLen]
	return x, nil
}

// hop is an opened hop layer.
type hop struct {
	distributorID, songID string
	sig, prev             []byte
}

// openHop opens and decodes a hop layer whose header was checked. Errors:
// ErrMalformed.
func openHop(t []byte, k ServiceKeys) (hop, error) {
	plain, ok := box.OpenAnonymous(nil, t[headerLen:], k.BoxPublic, k.BoxPrivate)
	if !ok {
		return hop{}, fail(ErrMalformed, "the layer does not open with the service's box key")
	}
	r := reader{b: plain}
	var h hop
	h.distributorID = r.str("distributor id")
	h.songID = r.str("song id")
	h.sig = r.bytes("signature", sigLen)
	if n := r.bytes("previous token length", 4); n != nil {
		h.prev = r.bytes("previous token", int(min(binary.BigEndian.Uint32(n), MaxTokenSize+1)))
	}
	r.end("hop")
	if r.err != nil {
		return hop{}, r.err
	}
	return h, nil
}
