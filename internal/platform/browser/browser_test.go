package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/fanfare/fanfare/internal/platform/browser"
)

const page = `<!DOCTYPE html>
<html><head><title>harness</title></head>
<body>
<button id="btn">click me</button>
<p>clicked: <span id="clicked">no</span></p>
<p>stream: <span id="state">connecting</span> <span id="pushed">nothing</span></p>
<script>
window.__loaded = Date.now();
document.getElementById("btn").addEventListener("click", function () {
	document.getElementById("clicked").textContent = "yes";
});
var es = new EventSource("/events");
es.onopen = function () { document.getElementById("state").textContent = "open"; };
es.onmessage = function (e) { document.getElementById("pushed").textContent = e.data; };
</script>
</body></html>`

// server serves the page and an SSE stream that sends one message for each
// value put on push.
func server(t *testing.T) (*httptest.Server, chan<- string) {
	push := make(chan string)
	quit := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, ": hello\n\n")
		http.NewResponseController(w).Flush()
		for {
			select {
			case v := <-push:
				fmt.Fprintf(w, "data: %s\n\n", v)
				http.NewResponseController(w).Flush()
			case <-r.Context().Done():
				return
			case <-quit:
				return
			}
		}
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(quit) // end open streams, or Close waits for them
		ts.Close()
	})
	return ts, push
}

func TestBrowser(t *testing.T) {
	ts, push := server(t)
	ctx := browser.New(t)

	// Headless, with the harness's flags on the real command line.
	cmd, err := chromedp.CallBrowser(ctx, cdpbrowser.GetBrowserCommandLine, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1280,900"} {
		if !slices.Contains(cmd.Arguments, f) {
			t.Errorf("command line lacks %s: %q", f, cmd.Arguments)
		}
	}
	if ua := browser.Run(t, ctx, chromedp.Evaluate[string](`navigator.userAgent`)); !strings.Contains(ua, "HeadlessChrome") {
		t.Errorf("user agent %q is not headless", ua)
	}

	browser.Do(t, ctx, chromedp.Navigate(ts.URL))
	loaded := browser.Run(t, ctx, chromedp.Evaluate[float64](`window.__loaded`))
	if loaded == 0 {
		t.Fatal("window.__loaded not set")
	}

	// A click runs the page's JS.
	browser.Do(t, ctx, chromedp.Click(chromedp.ID("btn")))
	if got := browser.Run(t, ctx, chromedp.Text(chromedp.ID("clicked"))); got != "yes" {
		t.Errorf("after click: %q, want yes", got)
	}

	// A value pushed over SSE shows up in the same document.
	browser.Run(t, ctx, chromedp.Poll[bool](`document.getElementById("state").textContent === "open"`))
	push <- "pushed-42"
	browser.Run(t, ctx, chromedp.Poll[bool](`document.getElementById("pushed").textContent === "pushed-42"`))
	if again := browser.Run(t, ctx, chromedp.Evaluate[float64](`window.__loaded`)); again != loaded {
		t.Errorf("page reloaded: __loaded %v, was %v", again, loaded)
	}

	// Screenshot and HTML land in the artifacts dir.
	path := browser.Screenshot(t, ctx, "after sse")
	if want := filepath.Join(browser.ArtifactsDir(t), "after_sse.png"); path != want {
		t.Errorf("screenshot path %s, want %s", path, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is not a PNG: % x", path, b[:min(len(b), 8)])
	}
	if len(b) < 2000 {
		t.Errorf("%s is only %d bytes", path, len(b))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != browser.Width {
		t.Errorf("screenshot is %d px wide, want %d", w, browser.Width)
	}
	html, err := os.ReadFile(strings.TrimSuffix(path, ".png") + ".html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "pushed-42") {
		t.Errorf("saved html lacks the pushed value:\n%s", html)
	}

	// A second tab shares cookies; an isolated context does not.
	browser.Do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.cookie = "who=first"`))
	tab, _ := browser.NewTab(t, ctx)
	browser.Do(t, tab, chromedp.Navigate(ts.URL))
	waitCookie(t, tab, "second tab", "who=first")
	iso, _ := browser.NewIsolated(t, ctx)
	isoTab, _ := browser.NewTab(t, iso)
	for name, c := range map[string]context.Context{"isolated": iso, "isolated tab": isoTab} {
		browser.Do(t, c, chromedp.Navigate(ts.URL))
		if got := browser.Run(t, c, chromedp.Evaluate[string](`document.cookie`)); got != "" {
			t.Errorf("%s cookies %q, want none", name, got)
		}
	}
	browser.Do(t, iso, chromedp.Evaluate[chromedp.Void](`document.cookie = "who=iso"`))
	waitCookie(t, isoTab, "isolated tab (same browser context as its parent)", "who=iso")
	if got := browser.Run(t, ctx, chromedp.Evaluate[string](`document.cookie`)); got != "who=first" {
		t.Errorf("first tab cookies %q after the isolated write, want who=first", got)
	}
}

func TestArtifactsDir(t *testing.T) {
	t.Run("default/a b#1", func(t *testing.T) {
		t.Setenv("FANFARE_ARTIFACTS", "")
		dir := browser.ArtifactsDir(t)
		t.Cleanup(func() { os.Remove(dir) }) // only if still empty
		if !strings.HasSuffix(dir, filepath.Join(".artifacts", "TestArtifactsDir_default_a_b_1")) {
			t.Errorf("dir %s", dir)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "go.mod")); err != nil {
			t.Errorf("dir %s is not in the repo root: %v", dir, err)
		}
	})
	t.Run("env", func(t *testing.T) {
		root := t.TempDir()
		t.Setenv("FANFARE_ARTIFACTS", root)
		if dir, want := browser.ArtifactsDir(t), filepath.Join(root, "TestArtifactsDir_env"); dir != want {
			t.Errorf("dir %s, want %s", dir, want)
		}
		if fi, err := os.Stat(filepath.Join(root, "TestArtifactsDir_env")); err != nil || !fi.IsDir() {
			t.Errorf("dir not created: %v", err)
		}
	})
}

func TestExecutable(t *testing.T) {
	t.Setenv("FANFARE_CHROMIUM", "")
	if got := browser.Executable(); got != "/usr/bin/chromium" {
		t.Errorf("default %s", got)
	}
	t.Setenv("FANFARE_CHROMIUM", "/opt/chrome")
	if got := browser.Executable(); got != "/opt/chrome" {
		t.Errorf("override %s", got)
	}
}

// waitCookie polls until the tab sees want as its cookies: a cookie written
// in one tab reaches the others a moment later.
func waitCookie(t *testing.T, ctx context.Context, what, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := browser.Run(t, ctx, chromedp.Evaluate[string](`document.cookie`))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cookies %q, want %q", what, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fatalRecorder is a test whose Fatal is recorded instead of ending it, so
// a test can look at what a failing action left behind.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }
func (f *fatalRecorder) Name() string      { return f.TB.Name() + "/failing" }

// A wait that fails saves the tab as it was (screenshot and HTML) before
// failing the test: the page shows what the wait was waiting for.
func TestFailedActionSavesTheTab(t *testing.T) {
	ts, _ := server(t)
	t.Setenv("FANFARE_ARTIFACTS", t.TempDir())
	ctx := browser.New(t)
	browser.Do(t, ctx, chromedp.Navigate(ts.URL))

	rec := &fatalRecorder{TB: t}
	browser.Run(rec, ctx, chromedp.Poll[bool](`document.getElementById("clicked").textContent === "never"`, chromedp.WithPollingTimeout(200*time.Millisecond)))
	if !strings.Contains(rec.fatal, "timeout") {
		t.Fatalf("the failed poll reported %q", rec.fatal)
	}
	dir := browser.ArtifactsDir(rec)
	html, err := os.ReadFile(filepath.Join(dir, "failed.html"))
	if err != nil {
		t.Fatalf("no page saved on failure: %v", err)
	}
	if !strings.Contains(string(html), `<span id="clicked">no</span>`) {
		t.Errorf("saved page lacks the state it failed on:\n%s", html)
	}
	if _, err := os.Stat(filepath.Join(dir, "failed.png")); err != nil {
		t.Errorf("no screenshot saved on failure: %v", err)
	}
}
