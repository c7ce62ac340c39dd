// Package browser is a small harness for tests that drive a real headless
// Chromium through chromedp: it starts the browser, opens more tabs and
// isolated browser contexts, and saves screenshots and the page's HTML as test
// artifacts.
package browser

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fanfare/fanfare/internal/platform/tailbuf"
)

// Window size of the browser, in CSS pixels.
const (
	Width  = 1280
	Height = 900
)

// Executable is the Chromium binary the harness runs: $FANFARE_CHROMIUM, or
// /usr/bin/chromium (Debian's package, which `go tool task deps` installs).
func Executable() string {
	if p := os.Getenv("FANFARE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// AllocatorOptions are the exec allocator options [New] starts the browser
// with: chromedp's defaults plus --headless, --no-sandbox, --disable-gpu and
// --disable-background-networking, the executable and the window size.
func AllocatorOptions() []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Executable()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(Width, Height),
	)
}

// New starts a headless Chromium and returns the chromedp context of its
// first tab. The browser is already running when New returns; the test's
// cleanup closes it. A missing executable fails the test (it is never
// skipped). Derive per-call timeouts from the returned context, never the
// other way round: canceling it closes the browser.
//
// Cleanups run last-in first-out: an httptest.Server with open streams (SSE)
// that is started after New closes before the browser and waits for them, so
// start it before New or end its handlers first.
func New(t testing.TB) context.Context {
	t.Helper()
	exe := Executable()
	if _, err := exec.LookPath(exe); err != nil {
		t.Fatalf("browser: chromium not found at %s (%v): install it with `go tool task deps` (as root), or point FANFARE_CHROMIUM at a Chromium binary", exe, err)
	}

	// Enough that the D-Bus noise leaves 16 KiB of the rest to show.
	out := tailbuf.New(256 << 10)
	opts := append(AllocatorOptions(), chromedp.CombinedOutput(out))
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		allocCancel()
		if t.Failed() {
			if o := outputTail(out); o != "" {
				t.Logf("browser: chromium output:\n%s", o)
			}
		}
	})

	start := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser and attaches the first tab
		t.Fatalf("browser: start %s: %v\n%s", exe, err, outputTail(out))
	}
	t.Logf("browser: %s started in %s", exe, time.Since(start).Round(time.Millisecond))
	return ctx
}

// NewTab opens a new tab in the same browser and browser context as ctx (so
// it shares cookies and storage with it) and returns its context. The test's
// cleanup closes it; cancel closes it earlier.
//
// The tab is open when NewTab returns. That matters: chromedp binds a tab to
// the context of its first action, so a tab first used under a
// context.WithTimeout would die with that timeout.
func NewTab(t testing.TB, ctx context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	tctx, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("browser: new tab: %v", err)
	}
	return tctx, cancel
}

// NewIsolated opens a tab in a new, empty browser context of the browser of
// ctx: a separate cookie jar and storage, like a second user. Tabs that
// [NewTab] opens from the returned context stay in that browser context.
// The test's cleanup closes it; cancel closes it earlier. As with [NewTab],
// the tab is open when NewIsolated returns (tabs opened from it inherit the
// browser context only once it exists).
func NewIsolated(t testing.TB, ctx context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	ictx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ictx); err != nil {
		t.Fatalf("browser: new browser context: %v", err)
	}
	return ictx, cancel
}

// Screenshot saves a full-page PNG of the tab ctx as <name>.png in
// [ArtifactsDir], and the page's outerHTML next to it as <name>.html. It
// logs and returns the PNG's path. A failure marks the test failed but does
// not stop it (a screenshot is usually evidence for another failure).
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	base := filepath.Join(ArtifactsDir(t), sanitize(name))

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("browser: screenshot %q: %v", name, err)
		return ""
	}
	if err := os.WriteFile(base+".png", png, 0o644); err != nil {
		t.Errorf("browser: screenshot %q: %v", name, err)
		return ""
	}
	t.Logf("browser: screenshot %s", base+".png")

	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err == nil {
		err = os.WriteFile(base+".html", []byte(html), 0o644)
	}
	if err != nil {
		t.Errorf("browser: page html %q: %v", name, err)
	}
	return base + ".png"
}

// ArtifactsDir is the directory, created on demand, for the test's
// artifacts: <root>/<sanitized test name>, where root is $FANFARE_ARTIFACTS
// or else <repo>/.artifacts.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("FANFARE_ARTIFACTS")
	if root == "" {
		repo, err := repoRoot()
		if err != nil {
			t.Fatalf("browser: %v (set FANFARE_ARTIFACTS)", err)
		}
		root = filepath.Join(repo, ".artifacts")
	}
	dir := filepath.Join(root, sanitize(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browser: artifacts dir: %v", err)
	}
	return dir
}

// repoRoot finds the repository from this source file's location.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", errors.New("cannot locate the source tree")
	}
	// file is <repo>/internal/platform/browser/browser.go.
	d := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
		return "", err
	}
	return d, nil
}

// sanitize makes s a single safe path element.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
	if s == "" || strings.Trim(s, ".") == "" {
		s = "_" + s
	}
	return s
}

// outputTail is the end of the browser's output without the D-Bus
// complaints every container run produces.
func outputTail(out *tailbuf.Buffer) string {
	var keep []string
	for line := range strings.Lines(out.String()) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			keep = append(keep, line)
		}
	}
	s := strings.Join(keep, "")
	if len(s) > 16<<10 {
		s = "...\n" + s[len(s)-16<<10:]
	}
	return s
}

// Do runs actions in the tab ctx within 30 s, failing the test on error
// (see [Run]).
func Do(t testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(actx, actions...); err != nil {
		fail(t, ctx, err)
	}
}

// Run runs one action that yields a value in the tab ctx within 30 s. On
// error it saves the tab as it is ([Screenshot] "failed") and fails the
// test: the page shows what a wait was waiting for.
func Run[T any](t testing.TB, ctx context.Context, action chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(actx, action)
	if err != nil {
		fail(t, ctx, err)
	}
	return v
}

// fail saves the tab, unless it is closed, and fails the test with err.
func fail(t testing.TB, tab context.Context, err error) {
	t.Helper()
	if tab.Err() == nil {
		Screenshot(t, tab, "failed")
	}
	t.Fatal(err)
}
