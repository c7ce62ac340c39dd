package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestVerifyDescription(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	d := &eventsv1.SongDescription{SongId: "3f1c2b8e-1d2a-4c9e-8f00-000000000001", Title: "Signed Song", ArtistId: "artist-1",
		DurationMs: 1000, ContentHash: bytes.Repeat([]byte{7}, 32), Fingerprint: []uint32{1, 2, 3},
		Splits: []*eventsv1.Split{{PayeeId: "artist-1", SharePpm: 1_000_000}}}
	canonical := domain.Canonical(d, 2)
	dir := t.TempDir()
	write := func(name string, canonical, sig []byte) string {
		b, err := protojson.Marshal(&songsv1.GetSignedDescriptionResponse{Canonical: canonical, Signature: sig, PublicKey: pub, Version: 2})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", canonical, domain.SignDescription(key, d, 2))
	keyText := base64.StdEncoding.EncodeToString(pub)
	var out bytes.Buffer
	if err := verifyDescription([]string{good, "--key", keyText}, nil, &out); err != nil {
		t.Fatalf("a good description: %v", err)
	}
	if !strings.Contains(out.String(), `title: "Signed Song"`) || !strings.Contains(out.String(), "verified: signed by registrar key "+keyText) {
		t.Fatalf("output:\n%s", out.String())
	}
	keyFile := filepath.Join(dir, "registrar.pub")
	os.WriteFile(keyFile, []byte(keyText+"\n"), 0o644)
	data, _ := os.ReadFile(good)
	if err := verifyDescription([]string{"--key", "@" + keyFile, "-"}, bytes.NewReader(data), &out); err != nil {
		t.Fatalf("from stdin with @key: %v", err)
	}

	tampered := write("tampered.json", bytes.Replace(canonical, []byte("Signed Song"), []byte("Signed Sing"), 1), domain.SignDescription(key, d, 2))
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"tampered", []string{tampered, "--key", keyText}, "NOT VERIFIED"},
		{"another registrar", []string{good, "--key", base64.StdEncoding.EncodeToString(otherPub)}, "NOT VERIFIED"},
		{"no key", []string{good}, "--key is required"},
		{"short key", []string{good, "--key", "AAAA"}, "32-byte"},
		{"no file", []string{"--key", keyText}, "name the signed description file"},
		{"missing file", []string{filepath.Join(dir, "nope.json"), "--key", keyText}, "no such file"},
		{"not json", []string{keyFile, "--key", keyText}, "is not a GetSignedDescription answer"},
		{"no signature", []string{write("nosig.json", canonical, nil), "--key", keyText}, "no signature"},
	}
	for _, c := range bad {
		err := verifyDescription(c.args, nil, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
