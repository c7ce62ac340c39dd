package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fanfare/fanfare/services/reports/settlement"
)

func runExport(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "settlement" {
		fmt.Fprintln(os.Stderr, "usage: fanfare export settlement [flags]  (fanfare export settlement -h for the flags)")
		return exitError{code: exitUnread, err: errors.New("the only export is settlement")}
	}
	fs := flags("export settlement", `export settlement --from YYYY-MM-DD --to YYYY-MM-DD [--payee ID]... [--format csv|json|dsr] [--out FILE]
                         [--eventstore-url esdb://… | --data-dir .fanfare]

Reads the whole event log (replaying and checking it as `+"`fanfare audit replay`"+` does)
and writes, per payee account and asset, the opening balance on --from, the
credits and debits of every kind during the period (both days included,
UTC) and the closing balance on --to. Every account's closing balance plus
what moved after the period must equal its balance in the ledger, to the
cent; if not, or if the log breaks an invariant, nothing is written.

exit codes: 0 written, 1 the report does not reconcile (or the log breaks an
invariant), 2 bad flags or the log could not be read`)
	from := fs.String("from", "", "first day of the period, YYYY-MM-DD (UTC); required")
	to := fs.String("to", "", "last day of the period, YYYY-MM-DD (UTC), included; required")
	var payees stringList
	fs.Var(&payees, "payee", "only this payee (an identity id); repeat for several; default: every payee")
	format := fs.String("format", "csv", "csv, json or dsr (a DDEX DSR-style flat file)")
	out := fs.String("out", "", "write to this file (replaced only once the report is complete); default: standard output")
	esURL := fs.String("eventstore-url", "", "read this event store (esdb://…); default: the embedded store in --data-dir")
	dataDir := fs.String("data-dir", ".fanfare", "data directory of the dev process (its event store is in <dir>/eventstore), used when --eventstore-url is not given")
	if err := parseFlags(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUnread, err: err}
	}
	bad := func(err error) error { return exitError{code: exitUnread, err: err} }
	if *from == "" {
		return bad(errRequired("--from"))
	}
	if *to == "" {
		return bad(errRequired("--to"))
	}
	var opts settlement.Options
	var err error
	if opts.From, err = settlement.ParseDay(*from); err != nil {
		return bad(fmt.Errorf("--from: %w", err))
	}
	if opts.To, err = settlement.ParseDay(*to); err != nil {
		return bad(fmt.Errorf("--to: %w", err))
	}
	opts.Payees = payees
	if !settlement.ValidFormat(*format) {
		return bad(fmt.Errorf("--format %q is none of %s", *format, strings.Join(settlement.Formats, ", ")))
	}
	rep, err := exportSettlement(ctx, *esURL, *dataDir, opts, os.Stderr)
	if err != nil {
		return err
	}
	if *out == "" {
		return settlement.Write(os.Stdout, rep, *format)
	}
	if err := writeFileAtomic(*out, func(w io.Writer) error { return settlement.Write(w, rep, *format) }); err != nil {
		return bad(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %d rows to %s\n", len(rep.Rows), *out)
	return nil
}

// exportSettlement runs settlement.Export on the event store at url or
// the embedded one in dataDir. Errors carry the command's exit code.
func exportSettlement(ctx context.Context, url, dataDir string, opts settlement.Options, progress io.Writer) (*settlement.Report, error) {
	var rep *settlement.Report
	err := withLog(url, dataDir, func(url string) error {
		defer fmt.Fprintln(progress) // ends the progress line
		var err error
		rep, err = settlement.Export(ctx, url, opts, progressBar(progress, "exporting"))
		return err
	})
	switch {
	case errors.Is(err, settlement.ErrLogUnsound), errors.Is(err, settlement.ErrUnreconciled):
		return nil, exitError{code: exitFinding, err: err}
	case err != nil:
		return nil, exitError{code: exitUnread, err: err}
	}
	return rep, nil
}

// writeFileAtomic writes path through a temporary file renamed into place
// once write succeeded: a failed export never leaves half a report.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}
