package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
	"google.golang.org/protobuf/encoding/protojson"
)

func runVerifyDescription(_ context.Context, args []string) error {
	return verifyDescription(args, os.Stdin, os.Stdout)
}

// verifyDescription checks a signed song description offline: FILE is the
// JSON answer of SongsService.GetSignedDescription (Connect JSON), the key
// the registrar's public signing key (GetRegistrarKeys.signing_key).
func verifyDescription(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flags("verify-description", "verify-description --key BASE64|@FILE FILE|-\n\nFILE holds the JSON of SongsService.GetSignedDescription; it is verified with the\nregistrar's public key, never with the key inside the file.")
	keyArg := fs.String("key", "", "the registrar's Ed25519 public key in base64, or @FILE holding it (required)")
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	} else if len(args) > 0 && args[0] == "-" {
		file, args = "-", args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" {
		return errors.New("name the signed description file (or - for standard input)")
	}
	if *keyArg == "" {
		return errRequired("--key")
	}
	keyText := *keyArg
	if strings.HasPrefix(keyText, "@") {
		b, err := os.ReadFile(keyText[1:])
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		keyText = string(b)
	}
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyText))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("--key: want a %d-byte Ed25519 public key in base64", ed25519.PublicKeySize)
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 16<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	var signed songsv1.GetSignedDescriptionResponse
	if err := protojson.Unmarshal(data, &signed); err != nil {
		return fmt.Errorf("%s is not a GetSignedDescription answer (JSON): %v", file, err)
	}
	if len(signed.Canonical) == 0 || len(signed.Signature) == 0 {
		return fmt.Errorf("%s has no canonical description or no signature", file)
	}
	if err := domain.VerifyCanonical(ed25519.PublicKey(pub), signed.Canonical, signed.Signature); err != nil {
		return fmt.Errorf("NOT VERIFIED: %w", err)
	}
	fmt.Fprintf(stdout, "%s", signed.Canonical)
	fmt.Fprintf(stdout, "verified: signed by registrar key %s\n", base64.StdEncoding.EncodeToString(pub))
	return nil
}
