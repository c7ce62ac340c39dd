package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/services/reports/audit"
)

// Exit codes of `fanfare audit replay`.
const (
	exitOK      = 0
	exitFinding = 1
	exitUnread  = 2
)

func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprintln(os.Stderr, "usage: fanfare audit replay [flags]  (fanfare audit replay -h for the flags)")
		return exitError{code: exitUnread, err: errors.New("the only audit command is replay")}
	}
	fs := flags("audit replay", `audit replay [--eventstore-url esdb://… | --data-dir .fanfare] [--json]

Reads the whole event log from position 0, decides every ledger request
again under the policy it was logged under, checks the invariants (each
transaction balanced, no wallet below zero, supply within the cap, each
play rewarded at most once, holds matching the open holds) and prints the
head of a SHA-256 hash chain over the events: two replays of one log print
the same hash.

exit codes: 0 clean, 1 an invariant is violated, 2 the log could not be read`)
	esURL := fs.String("eventstore-url", "", "replay this event store (esdb://…); default: the embedded store in --data-dir (stop the dev process first, or point this at its event store)")
	dataDir := fs.String("data-dir", ".fanfare", "data directory of the dev process (its event store is in <dir>/eventstore), used when --eventstore-url is not given")
	asJSON := fs.Bool("json", false, "print the result as one JSON object on the last line")
	if err := parseFlags(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUnread, err: err}
	}
	res, err := auditReplay(ctx, *esURL, *dataDir, os.Stderr)
	if err != nil {
		return exitError{code: exitUnread, err: err}
	}
	printAudit(os.Stdout, res, *asJSON)
	if !res.Clean() {
		return exitError{code: exitFinding, err: fmt.Errorf("%d invariant violations", len(res.Violations))}
	}
	return nil
}

func auditReplay(ctx context.Context, url, dataDir string, progress io.Writer) (*audit.Result, error) {
	var res *audit.Result
	err := withLog(url, dataDir, func(url string) error {
		defer fmt.Fprintln(progress) // ends the progress line
		var err error
		res, err = audit.Replay(ctx, url, audit.Options{ProgressEvery: 100_000, Progress: progressBar(progress, "replaying")})
		return err
	})
	return res, err
}

// withLog runs fn with the event store at url, or, when url is empty, the
// embedded one in dataDir, started for the call.
func withLog(url, dataDir string, fn func(url string) error) error {
	if url == "" {
		dir := filepath.Join(dataDir, "eventstore")
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("no event store at %s (give --data-dir or --eventstore-url): %w", dir, err)
		}
		srv, err := eventstored.Start(eventstored.Config{DataDir: dir, Listen: "127.0.0.1:0"})
		if err != nil {
			return fmt.Errorf("open the event store in %s (is `fanfare dev` running? then pass its --eventstore-url): %w", dir, err)
		}
		defer srv.Close()
		url = srv.URL()
	}
	return fn(url)
}

// progressBar draws how far a read of the log has come, on one line.
func progressBar(w io.Writer, verb string) func(events, position, head uint64) {
	start := time.Now()
	const width = 30
	return func(n, pos, head uint64) {
		frac := 1.0
		if head > 0 {
			frac = min(float64(pos)/float64(head), 1)
		}
		filled := int(frac * width)
		rate := float64(n) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\r%s [%s%s] %3.0f%% %d events (%.0f/s)", verb, strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, n, rate)
	}
}

func printAudit(w io.Writer, res *audit.Result, asJSON bool) {
	fmt.Fprintf(w, "events replayed: %d\n", res.Events)
	for _, b := range res.Books {
		fmt.Fprintf(w, "book %s: %d accounts, %d committed transactions, sum %d", b.Asset, len(b.Accounts), b.Transactions, b.Sum)
		if b.Supply.Cap > 0 {
			fmt.Fprintf(w, ", supply %d of cap %d (minor units)", b.Supply.Circulating, b.Supply.Cap)
		}
		fmt.Fprintln(w)
	}
	for _, v := range res.Violations {
		fmt.Fprintf(w, "VIOLATION %s\n", v)
	}
	if res.Clean() {
		fmt.Fprintln(w, "invariants: all hold")
	}
	fmt.Fprintf(w, "hash: %s\n", res.Hash)
	if asJSON {
		type book struct {
			Asset        string `json:"asset"`
			Accounts     int    `json:"accounts"`
			Transactions int    `json:"transactions"`
			Supply       int64  `json:"supply_units"`
		}
		out := struct {
			Events     uint64   `json:"events"`
			Hash       string   `json:"hash"`
			Clean      bool     `json:"clean"`
			Books      []book   `json:"books"`
			Violations []string `json:"violations"`
		}{Events: res.Events, Hash: res.Hash, Clean: res.Clean(), Books: []book{}, Violations: []string{}}
		for _, b := range res.Books {
			out.Books = append(out.Books, book{b.Asset, len(b.Accounts), b.Transactions, b.Supply.Circulating})
		}
		for _, v := range res.Violations {
			out.Violations = append(out.Violations, v.String())
		}
		data, _ := json.Marshal(out)
		fmt.Fprintln(w, string(data))
	}
}
