package domain_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/fanfare/fanfare/services/chains/domain"
	"golang.org/x/crypto/nacl/box"
)

// checkOutcome asserts what holds for any Resolve outcome.
func checkOutcome(t *testing.T, tok []byte, c domain.Chain, err error) {
	t.Helper()
	if err != nil {
		if domain.ReasonOf(err) == domain.ReasonUnspecified {
			t.Fatalf("rejection without a reason: %v", err)
		}
		return
	}
	n, herr := domain.Hops(tok)
	if herr != nil || n != len(c.Raw) || n > domain.DefaultMaxHops {
		t.Fatalf("resolved a token of %d layers (%v) into %d", n, herr, len(c.Raw))
	}
	if c.SongID != song || len(c.Distributors) > len(c.Raw) || slices.Contains(c.Distributors, "buyer") {
		t.Fatalf("bad chain %+v", c)
	}
	seen := map[string]bool{}
	for _, d := range c.Distributors {
		if seen[d] || !slices.Contains(c.Raw, d) {
			t.Fatalf("distributors %v of raw %v", c.Distributors, c.Raw)
		}
		seen[d] = true
	}
}

// FuzzResolve: arbitrary bytes never panic, and every rejection has a reason.
func FuzzResolve(f *testing.F) {
	ids := []string{"A", "B", "C", "A", "buyer", "D", "E", "F"}
	reg := registered(ids...)
	toks := build(f, ids...)
	for _, tok := range toks {
		f.Add(tok)
		f.Add(tok[:len(tok)/2])
		bad := slices.Clone(tok)
		bad[len(bad)-1] ^= 1
		f.Add(bad)
		bad = slices.Clone(tok)
		bad[5]++
		f.Add(bad)
	}
	f.Add([]byte("FRT1\x01\x01"))
	f.Add([]byte("FRT1\x02\x02"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		c, err := resolve(tok, "buyer", reg)
		checkOutcome(t, tok, c, err)
	})
}

// FuzzResolveSealed seals arbitrary plaintext to the service as the outer
// hop of a token, so the fuzzer reaches the hop decoder and the layers under
// it, which random bytes never open.
func FuzzResolveSealed(f *testing.F) {
	ids := []string{"A", "B", "C", "buyer"}
	reg := registered(ids...)
	toks := build(f, ids...)
	for i, tok := range toks[1:] {
		f.Add(byte(i+2), openHopPlain(f, tok))
	}
	f.Add(byte(2), []byte{})
	f.Fuzz(func(t *testing.T, layers byte, plain []byte) {
		tok, err := box.SealAnonymous([]byte{'F', 'R', 'T', '1', 0x02, layers}, plain, svc.BoxPublic, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := resolve(tok, "buyer", reg)
		checkOutcome(t, tok, c, err)
	})
}

func openHopPlain(f *testing.F, tok []byte) []byte {
	plain, ok := box.OpenAnonymous(nil, tok[6:], svc.BoxPublic, svc.BoxPrivate)
	if !ok {
		f.Fatal("hop does not open")
	}
	return plain
}

// FuzzParseTokenText: never panics; accepted text is canonical and has a
// token header.
func FuzzParseTokenText(f *testing.F) {
	for _, tok := range build(f, "A", "B", "C") {
		f.Add(domain.EncodeToken(tok))
		f.Add(" " + domain.EncodeToken(tok) + "=\n")
	}
	f.Add("RlJUMQEB")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := domain.ParseTokenText(s)
		if err != nil {
			if domain.ReasonOf(err) != domain.ReasonMalformed {
				t.Fatalf("error %v is not malformed", err)
			}
			return
		}
		if _, err := domain.Hops(b); err != nil {
			t.Fatalf("accepted a token without a header: %v", err)
		}
		again, err := domain.ParseTokenText(domain.EncodeToken(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("text form does not round-trip: %v", err)
		}
		if len(s) > 0 && s[0] != ' ' && s[0] != '\t' && s[0] != '\n' && s[0] != '\r' &&
			s[len(s)-1] != ' ' && s[len(s)-1] != '\t' && s[len(s)-1] != '\n' && s[len(s)-1] != '\r' &&
			domain.EncodeToken(b) != s {
			t.Fatalf("accepted a non-canonical text %q", s)
		}
	})
}
