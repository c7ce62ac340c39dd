package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/bench"
)

func runBench(ctx context.Context, args []string) error {
	fs := flags("bench", "bench <scenario> [--json] [--duration 3s] [--eventstore-url esdb://…] [--cpuprofile F]\n\nscenarios: "+strings.Join(bench.Names(), ", "))
	asJSON := fs.Bool("json", false, "print the result as one JSON object on the last line")
	duration := fs.Duration("duration", 3*time.Second, "length of each timed phase")
	esURL := fs.String("eventstore-url", "", "benchmark an external event store instead of an embedded one")
	dataDir := fs.String("data-dir", "", "data directory for embedded infrastructure (default: a temporary one)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	// Accept the scenario before or after the flags.
	var scenario string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if scenario == "" && fs.NArg() > 0 {
		scenario = fs.Arg(0)
	}
	if scenario == "" {
		fs.Usage()
		return fmt.Errorf("name a scenario: %s", strings.Join(bench.Names(), ", "))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	res, err := bench.Run(ctx, scenario, bench.Options{Duration: *duration, EventStoreURL: *esURL, DataDir: *dataDir, Log: logf})
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
	} else {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Println(string(b))
	}
	if !res.Pass {
		return fmt.Errorf("floors missed: %s", strings.Join(res.Failures, "; "))
	}
	return nil
}
