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

	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/services/chains/domain"
)

const referralSynopsis = `referral <subcommand> [flags]

subcommands:
  keygen       create a distributor key file and print its public key
  extend       append yourself to a referral token (offline) and print the new token
  inspect      print a token's layer count (the only thing a distributor can read)
  service-key  print the --service-key text of a chains service key file`

// runReferral is `fanfare referral`: what a distributor does offline with
// referral tokens (DESIGN §4).
func runReferral(_ context.Context, args []string) error {
	return referral(args, os.Stdin, os.Stdout)
}

func referral(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(os.Stderr, "usage: fanfare %s\n", referralSynopsis)
		if len(args) == 0 {
			return errors.New("name a subcommand: keygen, extend, inspect, service-key")
		}
		return nil
	}
	switch args[0] {
	case "keygen":
		return referralKeygen(args[1:], stdout)
	case "extend":
		return referralExtend(args[1:], stdin, stdout)
	case "inspect":
		return referralInspect(args[1:], stdin, stdout)
	case "service-key":
		return referralServiceKey(args[1:], stdout)
	}
	return fmt.Errorf("unknown subcommand %q (have keygen, extend, inspect, service-key)", args[0])
}

// referralKeygen creates a distributor key file (an Ed25519 seed, base64,
// mode 0600) and prints the public key to register with the service.
func referralKeygen(args []string, stdout io.Writer) error {
	fs := flags("referral keygen", "referral keygen --out FILE")
	out := fs.String("out", "", "key file to create (required; an existing file is never overwritten)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errRequired("--out")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s already exists; not overwriting a key", *out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := identity.LoadOrCreateKey(*out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	return nil
}

// referralExtend appends the distributor to a token and prints the new one.
func referralExtend(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flags("referral extend", "referral extend --token TEXT|@FILE|- --song ID --distributor ID --key FILE --service-key TEXT")
	tokenArg := fs.String("token", "", "the token you received: its text, @FILE holding it, or - for standard input (required)")
	song := fs.String("song", "", "song id the token is for (required)")
	dist := fs.String("distributor", "", "your distributor (identity) id (required)")
	keyFile := fs.String("key", "", "your distributor key file, from `fanfare referral keygen` (required)")
	serviceKey := fs.String("service-key", "", "the chains service's box public key, base64 (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"--token", *tokenArg}, {"--song", *song}, {"--distributor", *dist}, {"--key", *keyFile}, {"--service-key", *serviceKey}} {
		if f.v == "" {
			return errRequired(f.name)
		}
	}
	tok, err := readReferralToken(*tokenArg, stdin)
	if err != nil {
		return err
	}
	box, err := parseServiceKey(*serviceKey)
	if err != nil {
		return err
	}
	if _, err := os.Stat(*keyFile); err != nil {
		return fmt.Errorf("--key: %w (create one with `fanfare referral keygen --out FILE`)", err)
	}
	key, err := identity.LoadOrCreateKey(*keyFile)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	next, err := domain.Extend(tok, *song, *dist, key, domain.PublicKeys{Box: box})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, domain.EncodeToken(next))
	return nil
}

// referralInspect prints a token's layer count.
func referralInspect(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flags("referral inspect", "referral inspect --token TEXT|@FILE|-")
	tokenArg := fs.String("token", "", "the token: its text, @FILE holding it, or - for standard input (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tokenArg == "" {
		return errRequired("--token")
	}
	tok, err := readReferralToken(*tokenArg, stdin)
	if err != nil {
		return err
	}
	n, err := domain.Hops(tok)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "layers: %d (at most %d; earlier layers are sealed to the service)\n", n, domain.DefaultMaxHops)
	return nil
}

// referralServiceKey prints the box public key of a chains service key file,
// the text distributors pass as --service-key.
func referralServiceKey(args []string, stdout io.Writer) error {
	fs := flags("referral service-key", "referral service-key --key FILE")
	keyFile := fs.String("key", "", "the chains service's key file (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyFile == "" {
		return errRequired("--key")
	}
	if _, err := os.Stat(*keyFile); err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	key, err := identity.LoadOrCreateKey(*keyFile)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(domain.DeriveServiceKeys(key).BoxPublic[:]))
	return nil
}

// readReferralToken reads --token: the text itself, @FILE, or - (stdin).
func readReferralToken(arg string, stdin io.Reader) ([]byte, error) {
	text := arg
	switch {
	case arg == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 2*domain.MaxTokenSize))
		if err != nil {
			return nil, fmt.Errorf("--token: reading standard input: %w", err)
		}
		text = string(b)
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("--token: %w", err)
		}
		text = string(b)
	}
	tok, err := domain.ParseTokenText(text)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	return tok, nil
}

// parseServiceKey parses a 32-byte box public key in any base64 flavour.
func parseServiceKey(s string) (*[32]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("--service-key: %d bytes, want a 32-byte box public key", len(b))
			}
			var k [32]byte
			copy(k[:], b)
			return &k, nil
		}
	}
	return nil, errors.New("--service-key: not base64")
}
