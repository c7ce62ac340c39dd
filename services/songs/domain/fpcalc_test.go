package domain_test

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fanfare/fanfare/services/songs/domain"
)

// The real tools: sox makes clips, lame re-encodes one, fpcalc (Chromaprint)
// fingerprints them. Missing tools fail the test: they are dependencies.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"fpcalc", "sox", "lame"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (packages libchromaprint-tools sox lame libsox-fmt-mp3): run `go tool task deps`", tool)
		}
	}
}

func runE(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
	}
	return string(out), nil
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runE(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A clip recipe: a sequence of segments, each three sox synth tones (one per
// channel, mixed down to mono at the end).
type clip struct {
	name    string
	seed    uint64
	segment float64 // seconds per segment
	tones   func(r *rand.Rand) [3]string
	effects []string
}

// note names a MIDI note as sox's %semitones-from-A4.
func note(midi int) string { return fmt.Sprintf("%%%d", midi-69) }

func pick(r *rand.Rand, xs []int) int { return xs[r.IntN(len(xs))] }

var clips = []clip{
	{ // fast plucked melody over a square bass, A minor pentatonic
		name: "pluck-melody", seed: 1, segment: 0.25,
		tones: func(r *rand.Rand) [3]string {
			n := pick(r, []int{69, 72, 74, 76, 79, 81, 84})
			return [3]string{"pluck " + note(n), "square " + note(n-24), "sine " + note(n+12)}
		},
	},
	{ // slow sustained triads with tremolo, E major progression
		name: "organ-chords", seed: 2, segment: 1.5,
		tones: func(r *rand.Rand) [3]string {
			root := pick(r, []int{52, 61, 57, 59, 54, 56})
			return [3]string{"sine " + note(root), "sine " + note(root+4), "triangle " + note(root+7)}
		},
		effects: []string{"tremolo", "6", "50"},
	},
	{ // noise bursts on a walking sawtooth bass, 140 bpm
		name: "noise-bass", seed: 3, segment: 60.0 / 140 / 2,
		tones: func(r *rand.Rand) [3]string {
			b := pick(r, []int{38, 41, 43, 45, 46, 48})
			noise := []string{"pinknoise", "whitenoise", "brownnoise"}[r.IntN(3)]
			return [3]string{"sawtooth " + note(b), noise, "square " + note(b+19)}
		},
		effects: []string{"overdrive", "5"},
	},
	{ // sine and triangle sweeps, one a second, with echo
		name: "sweeps", seed: 4, segment: 1,
		tones: func(r *rand.Rand) [3]string {
			lo := 200 + r.IntN(300)
			hi := lo + 200 + r.IntN(1500)
			if r.IntN(2) == 0 {
				lo, hi = hi, lo
			}
			return [3]string{fmt.Sprintf("sine %d-%d", lo, hi), fmt.Sprintf("triangle %d-%d", hi/2, lo/2), "sine " + note(60+r.IntN(24))}
		},
		effects: []string{"echo", "0.8", "0.7", "120", "0.4"},
	},
}

const clipSeconds = 30

func (c clip) make(path string) error {
	r := rand.New(rand.NewPCG(c.seed, 42))
	args := []string{"-q", "-R"}
	for s := 0.0; s < clipSeconds; s += c.segment {
		tones := c.tones(r)
		seg := fmt.Sprintf("|sox -R -n -r 22050 -c 3 -p synth %.4f %s %s %s vol 0.3", c.segment, tones[0], tones[1], tones[2])
		args = append(args, seg)
	}
	args = append(args, path, "remix", "-")
	args = append(args, c.effects...)
	args = append(args, "norm", "-3")
	_, err := runE("sox", args...)
	return err
}

// fpcalc runs fpcalc. fpcalc 1.5.1 built with FFmpeg ≥ 5 reports the end of
// its input as "Error decoding audio frame (End of file)" and exits with 3
// after printing a complete fingerprint; that output is taken.
func fpcalc(args ...string) (string, error) {
	out, err := exec.Command("fpcalc", args...).Output()
	if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "End of file") && strings.Contains(string(out), "FINGERPRINT=") {
		err = nil
	}
	if err != nil {
		return "", fmt.Errorf("fpcalc %s: %v", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// fpcalcBoth fingerprints a file with `fpcalc -raw` and plain `fpcalc` and
// checks both forms decode to the same items.
func fpcalcBoth(path string) ([]uint32, error) {
	base := filepath.Base(path)
	rawOut, err := fpcalc("-raw", path)
	if err != nil {
		return nil, err
	}
	compOut, err := fpcalc(path)
	if err != nil {
		return nil, err
	}
	raw, err := domain.ParseFingerprint(rawOut)
	if err != nil {
		return nil, fmt.Errorf("fpcalc -raw %s: %w", base, err)
	}
	comp, err := domain.ParseFingerprint(compOut)
	if err != nil {
		return nil, fmt.Errorf("fpcalc %s: %w", base, err)
	}
	if !slices.Equal(raw, comp) {
		return nil, fmt.Errorf("%s: raw (%d items) and compressed (%d items) forms differ", base, len(raw), len(comp))
	}
	// Our compressor writes exactly what fpcalc printed.
	printed := ""
	for line := range strings.Lines(compOut) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "FINGERPRINT="); ok {
			printed = s
		}
	}
	if got := domain.CompressFingerprint(1, raw); got != printed {
		return nil, fmt.Errorf("%s: CompressFingerprint differs from fpcalc's output", base)
	}
	return raw, nil
}

func mustFpcalc(t *testing.T, path string) []uint32 {
	t.Helper()
	fp, err := fpcalcBoth(path)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestFpcalcRealAudio(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	fps := make([][]uint32, len(clips))
	var wg sync.WaitGroup
	for i, c := range clips {
		wg.Go(func() {
			path := filepath.Join(dir, c.name+".wav")
			err := c.make(path)
			if err == nil {
				fps[i], err = fpcalcBoth(path)
			}
			if err != nil {
				t.Errorf("clip %s: %v", c.name, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, fp := range fps {
		t.Logf("%s: %d items", clips[i].name, len(fp))
		if len(fp) < 200 {
			t.Fatalf("%s: only %d items for %d s", clips[i].name, len(fp), clipSeconds)
		}
	}
	// The clips really are different recordings.
	for i := range fps {
		for j := i + 1; j < len(fps); j++ {
			ppm, off := domain.FingerprintSimilarity(fps[i], fps[j], domain.FingerprintMaxOffset)
			t.Logf("%s vs %s: %d ppm at %d", clips[i].name, clips[j].name, ppm, off)
			if ppm >= domain.FingerprintConflictPPM {
				t.Fatalf("%s and %s conflict (%d ppm at %d): the clips are not distinct", clips[i].name, clips[j].name, ppm, off)
			}
		}
	}

	// Register all but the last clip.
	x := domain.NewFingerprintIndex(domain.FingerprintIndexConfig{})
	for i, fp := range fps[:len(fps)-1] {
		if err := x.Add(clips[i].name, fp); err != nil {
			t.Fatal(err)
		}
	}
	// The unregistered clip conflicts with none.
	if ms := x.Lookup(fps[len(fps)-1]); len(ms) != 0 {
		t.Fatalf("%s matched %+v", clips[len(fps)-1].name, ms)
	}

	// An MP3 re-encode of a registered clip (128 kbps; 64 kbps for the
	// noisy one) is a conflict with it, and only with it.
	for k, kbps := range []string{"128", "128", "64"} {
		wav := filepath.Join(dir, clips[k].name+".wav")
		mp3 := filepath.Join(dir, clips[k].name+".mp3")
		run(t, "lame", "--quiet", "-b", kbps, wav, mp3)
		enc := mustFpcalc(t, mp3)
		ms := x.Lookup(enc)
		if len(ms) == 0 || ms[0].SongID != clips[k].name {
			ppm, off := domain.FingerprintSimilarity(fps[k], enc, domain.FingerprintMaxOffset)
			t.Fatalf("MP3 of %s: lookup %+v (direct similarity %d ppm at %d)", clips[k].name, ms, ppm, off)
		}
		t.Logf("MP3 of %s: %+v", clips[k].name, ms[0])
		if len(ms) != 1 {
			t.Fatalf("MP3 of %s also matched %+v", clips[k].name, ms[1:])
		}
	}

	// A 15 s excerpt starting 3 s in, trimmed with sox, is found near offset 24.
	cut := filepath.Join(dir, "cut.wav")
	run(t, "sox", filepath.Join(dir, clips[2].name+".wav"), cut, "trim", "3", "15")
	ms := x.Lookup(mustFpcalc(t, cut))
	if len(ms) == 0 || ms[0].SongID != clips[2].name || ms[0].Offset < 18 || ms[0].Offset > 28 {
		t.Fatalf("excerpt of %s: %+v", clips[2].name, ms)
	}
	t.Logf("excerpt of %s: %+v", clips[2].name, ms[0])
}
