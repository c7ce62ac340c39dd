// Command fanfare is Fanfare's one binary.
//
//	fanfare dev        everything in one process on embedded infrastructure
//	fanfare serve      one part as its own process (distributed mode)
//	fanfare eventstore the embedded KurrentDB-protocol event store on its own
//	fanfare kafka      the embedded Kafka-protocol broker on its own
//	fanfare bench      a named benchmark scenario
//	fanfare token      a signed identity for calling services directly (development)
//	fanfare verify-description  check a signed song description offline
//	fanfare referral   extend referral tokens offline (distributors)
//	fanfare audit replay  replay the event log, check the invariants, print its hash
//	fanfare roles      grant, revoke or list an identity's roles (Kratos admin API)
//
// Run `fanfare <command> -h` for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/fanfare/fanfare/internal/platform/tracing"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands = []command{
	{"dev", "run every part in one process on embedded infrastructure", runDev},
	{"serve", "run one part as its own process (distributed mode): a service, a saga, forwarder, gateway, broker or eventstore", runServe},
	{"eventstore", "run the embedded event store (KurrentDB gRPC protocol)", runEventStore},
	{"kafka", "run the embedded Kafka-protocol broker with Fanfare's topics", runKafka},
	{"bench", "run a benchmark scenario and print its figures", runBench},
	{"token", "print a signed internal identity for calling services in development", runToken},
	{"verify-description", "verify a registrar-signed song description offline", runVerifyDescription},
	{"referral", "extend referral tokens offline (distributors)", runReferral},
	{"audit", "audit replay: replay the whole event log, check the invariants, print its hash", runAudit},
	{"export", "export settlement: the settlement report of a period, reconciled with the ledger", runExport},
	{"roles", "grant, revoke or list an identity's roles (Kratos admin API)", runRoles},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fanfare <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'fanfare <command> -h' for the flags of a command.")
}

func main() {
	// The event store and broker allocate a lot of short-lived buffers; a
	// higher GC target trades memory (plenty here) for throughput.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	slog.SetDefault(logger())
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	for _, c := range commands {
		if c.name == os.Args[1] {
			err := traced(ctx, c, os.Args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "fanfare %s: %v\n", c.name, err)
				var ee exitError
				if errors.As(err, &ee) {
					os.Exit(ee.code)
				}
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "fanfare: unknown command %q\n\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}

// traced runs a command with its spans exported over OTLP when the
// OpenTelemetry variables say where (OTEL_EXPORTER_OTLP_ENDPOINT, …), as
// service fanfare-<command> (fanfare-<part> for serve); the exporter is
// flushed at the end.
func traced(ctx context.Context, c command, args []string) error {
	service := "fanfare-" + c.name
	if c.name == "serve" && len(args) > 0 {
		service = "fanfare-" + args[0]
	}
	shutdown, err := tracing.Export(ctx, service)
	if err != nil {
		return fmt.Errorf("OpenTelemetry export: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			slog.Warn("flushing traces", "err", err)
		}
	}()
	return c.run(ctx, args)
}

// logger writes JSON lines (one object per record, for log pipelines), or
// text with FANFARE_LOG_FORMAT=text.
func logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevel()}
	if os.Getenv("FANFARE_LOG_FORMAT") == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("FANFARE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// flags makes a command's flag set; errors are returned, not fatal.
func flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fanfare %s\n\nflags (each also read from FANFARE_<FLAG>, e.g. --data-dir from FANFARE_DATA_DIR):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then applies the environment (applyEnv).
// Command-line flags win; containers configure parts through env alone.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return applyEnv(fs)
}

// applyEnv gives every flag not set on the command line the value of its
// environment variable, if set and not empty: FANFARE_ and the flag's name
// in capitals with "-" as "_" (--kafka-brokers: FANFARE_KAFKA_BROKERS).
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if v := os.Getenv(env); v != "" && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "FANFARE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// exitError makes the process exit with code (commands whose exit codes
// mean something, such as audit replay).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func errRequired(flag string) error { return fmt.Errorf("%s is required", flag) }
