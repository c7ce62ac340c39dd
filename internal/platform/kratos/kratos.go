// Package kratos builds and runs a real Ory Kratos (v1.3.1) as a child
// process, for `fanfare dev` and for tests.
//
// The binary is built once from the nested module deploy/kratos/build and
// cached (see [Binary]); [Start] migrates a SQLite database in a data
// directory and serves Kratos with deploy/kratos/kratos.yml until
// [Server.Close].
package kratos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fanfare/fanfare/internal/platform/freeport"
	"github.com/fanfare/fanfare/internal/platform/tailbuf"
)

// Version is the Kratos release deploy/kratos/build pins.
const Version = "v1.3.1"

// DeployDir returns the repository's deploy/kratos directory (config,
// identity schema and the build module), found from this source file's
// location. FANFARE_KRATOS_DIR overrides it.
func DeployDir() (string, error) {
	if d := os.Getenv("FANFARE_KRATOS_DIR"); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("kratos: cannot locate the source tree (set FANFARE_KRATOS_DIR)")
	}
	// file is <repo>/internal/platform/kratos/kratos.go.
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "kratos")
	if _, err := os.Stat(filepath.Join(d, "kratos.yml")); err != nil {
		return "", fmt.Errorf("kratos: deploy dir %s: %w (set FANFARE_KRATOS_DIR)", d, err)
	}
	return filepath.Clean(d), nil
}

// CachePath is where [Binary] keeps the built Kratos:
// $FANFARE_CACHE/kratos-v1.3.1/kratos, or <user cache dir>/fanfare/… (on
// Linux ~/.cache/fanfare/kratos-v1.3.1/kratos).
func CachePath() (string, error) {
	root := os.Getenv("FANFARE_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("kratos: no cache dir (set FANFARE_CACHE): %w", err)
		}
		root = filepath.Join(c, "fanfare")
	}
	return filepath.Join(root, "kratos-"+Version, "kratos"), nil
}

var buildMu sync.Mutex

// Binary returns the path of the Kratos binary, building it first if the
// cache does not hold one. The build (go build -tags sqlite in
// deploy/kratos/build) takes a few minutes; concurrent callers, in this
// process or others, wait for one build.
func Binary(ctx context.Context) (string, error) {
	dir, err := DeployDir()
	if err != nil {
		return "", err
	}
	return BinaryFrom(ctx, dir)
}

// BinaryFrom is [Binary] with an explicit deploy/kratos directory.
func BinaryFrom(ctx context.Context, deployDir string) (string, error) {
	out, err := CachePath()
	if err != nil {
		return "", err
	}
	if isExecutable(out) {
		return out, nil
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("kratos: cache dir: %w", err)
	}
	// Serialize builds across processes (go test runs packages in parallel).
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("kratos: build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("kratos: build lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if isExecutable(out) {
		return out, nil
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("kratos: building Kratos needs the go command: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "sqlite", "-o", tmp, ".")
	cmd.Dir = filepath.Join(deployDir, "build")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOWORK=off")
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kratos: go build -tags sqlite in %s: %w\n%s", cmd.Dir, err, logBuf.Bytes())
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("kratos: install binary: %w", err)
	}
	return out, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Config says where a Kratos keeps its data and listens.
type Config struct {
	// DataDir holds kratos.sqlite and, unless Log is set, kratos.log.
	// Required.
	DataDir string
	// PublicAddr and AdminAddr are loopback host:port pairs. Defaults:
	// 127.0.0.1:4433 and 127.0.0.1:4434. Port 0: a free one (freeport.Addr).
	PublicAddr string
	AdminAddr  string
	// PublicBaseURL is the URL browsers reach the public API at (flow
	// action URLs and cookies use it). Default: http://PublicAddr/.
	PublicBaseURL string

	// Binary is the Kratos executable. Default: [Binary].
	Binary string
	// DeployDir is deploy/kratos (kratos.yml, identity.schema.json).
	// Default: [DeployDir].
	DeployDir string
	// Env adds configuration overrides in Kratos' environment form, e.g.
	// SELFSERVICE_FLOWS_LOGIN_UI_URL=http://127.0.0.1:8080/login.
	Env []string
	// Log receives Kratos' output. Default: <DataDir>/kratos.log.
	Log io.Writer
	// ReadyTimeout bounds the wait for /health/ready. Default: 60s.
	ReadyTimeout time.Duration
}

// Server is a running Kratos child process.
type Server struct {
	cmd       *exec.Cmd
	publicURL string
	adminURL  string
	logFile   *os.File
	tail      *tailbuf.Buffer
	done      chan struct{}
	waitErr   error
	closeOnce sync.Once
	closeErr  error
}

// PublicURL is the public (self-service, ToSession) API, without a
// trailing slash.
func (s *Server) PublicURL() string { return s.publicURL }

// AdminURL is the admin (identities) API, without a trailing slash.
func (s *Server) AdminURL() string { return s.adminURL }

// Start migrates the SQLite database in cfg.DataDir and starts `kratos serve`
// with deploy/kratos/kratos.yml, returning once both APIs report ready. An
// address with port 0 gets a free port; as Kratos binds it only after
// start-up, another process may take it meanwhile, and then Start tries
// again on new ports (3 times in all).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	pubFree, admFree := strings.HasSuffix(cfg.PublicAddr, ":0"), strings.HasSuffix(cfg.AdminAddr, ":0")
	for attempt := 1; ; attempt++ {
		c := cfg
		var err error
		if pubFree {
			if c.PublicAddr, err = freeport.Addr(); err != nil {
				return nil, err
			}
		}
		if admFree {
			if c.AdminAddr, err = freeport.Addr(); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, c)
		if err == nil || !(pubFree || admFree) || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
	}
}

func start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("kratos: Config.DataDir is required")
	}
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = "127.0.0.1:4433"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:4434"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	var err error
	if cfg.DeployDir == "" {
		if cfg.DeployDir, err = DeployDir(); err != nil {
			return nil, err
		}
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = BinaryFrom(ctx, cfg.DeployDir); err != nil {
			return nil, err
		}
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("kratos: data dir: %w", err)
	}
	pubHost, pubPort, err := splitAddr(cfg.PublicAddr)
	if err != nil {
		return nil, fmt.Errorf("kratos: public addr: %w", err)
	}
	admHost, admPort, err := splitAddr(cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("kratos: admin addr: %w", err)
	}
	publicURL := "http://" + cfg.PublicAddr
	adminURL := "http://" + cfg.AdminAddr
	baseURL := cfg.PublicBaseURL
	if baseURL == "" {
		baseURL = publicURL + "/"
	}

	s := &Server{publicURL: publicURL, adminURL: adminURL, tail: tailbuf.New(16 << 10), done: make(chan struct{})}
	out := cfg.Log
	if out == nil {
		f, err := os.OpenFile(filepath.Join(dataDir, "kratos.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("kratos: log file: %w", err)
		}
		s.logFile, out = f, f
	}
	out = io.MultiWriter(out, s.tail)

	// A small, explicit environment: Kratos reads any variable named like a
	// config key (LOG_LEVEL, VERSION, …), so the caller's is not inherited.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"DSN=sqlite://" + filepath.Join(dataDir, "kratos.sqlite") + "?_fk=true&mode=rwc&_busy_timeout=10000&_journal_mode=WAL",
		"SERVE_PUBLIC_HOST=" + pubHost,
		"SERVE_PUBLIC_PORT=" + pubPort,
		"SERVE_PUBLIC_BASE_URL=" + baseURL,
		"SERVE_ADMIN_HOST=" + admHost,
		"SERVE_ADMIN_PORT=" + admPort,
		"SERVE_ADMIN_BASE_URL=" + adminURL + "/",
	}
	env = append(env, cfg.Env...)

	migrate := exec.CommandContext(ctx, cfg.Binary, "migrate", "sql", "-e", "--yes")
	migrate.Dir, migrate.Env, migrate.Stdout, migrate.Stderr = cfg.DeployDir, env, out, out
	if err := migrate.Run(); err != nil {
		s.closeLog()
		return nil, fmt.Errorf("kratos: migrate sql: %w\n%s", err, s.tail.String())
	}

	// Not CommandContext: the server outlives Start's ctx; Close stops it.
	cmd := exec.Command(cfg.Binary, "serve", "-c", filepath.Join(cfg.DeployDir, "kratos.yml"), "--dev")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = cfg.DeployDir, env, out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		s.closeLog()
		return nil, fmt.Errorf("kratos: serve: %w", err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	if err := s.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w\n%s", err, s.tail.String())
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	// The admin port serves health under /admin as well; /health/ready there
	// redirects.
	urls := []string{s.publicURL + "/health/ready", s.adminURL + "/admin/health/ready"}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := true
		for _, u := range urls {
			if !httpOK(ctx, client, u) {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("kratos: serve exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("kratos: not ready after %s: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Close stops Kratos (SIGTERM, then SIGKILL after 10s) and waits for it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		defer s.closeLog()
		select {
		case <-s.done:
			return // already exited
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.closeErr = errors.New("kratos: did not stop within 10s of SIGTERM; killed")
		}
	})
	return s.closeErr
}

func (s *Server) closeLog() {
	if s.logFile != nil {
		s.logFile.Close()
	}
}

func splitAddr(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if _, err := strconv.Atoi(port); err != nil || port == "0" {
		return "", "", fmt.Errorf("%q: need a fixed port", addr)
	}
	return host, port, nil
}

// UIEnv points Kratos' browser flows at a gateway serving the login,
// registration and error pages at gatewayURL (no trailing slash).
func UIEnv(gatewayURL string) []string {
	return []string{
		"SELFSERVICE_DEFAULT_BROWSER_RETURN_URL=" + gatewayURL + "/",
		"SELFSERVICE_ALLOWED_RETURN_URLS=" + gatewayURL,
		"SELFSERVICE_FLOWS_ERROR_UI_URL=" + gatewayURL + "/error",
		"SELFSERVICE_FLOWS_LOGIN_UI_URL=" + gatewayURL + "/login",
		"SELFSERVICE_FLOWS_REGISTRATION_UI_URL=" + gatewayURL + "/registration",
		"SELFSERVICE_FLOWS_SETTINGS_UI_URL=" + gatewayURL + "/settings",
		"SELFSERVICE_FLOWS_LOGOUT_AFTER_DEFAULT_BROWSER_RETURN_URL=" + gatewayURL + "/login",
	}
}

// Ready asks a Kratos public API whether it is ready.
func Ready(ctx context.Context, publicURL string) error {
	if !httpOK(ctx, &http.Client{Timeout: 2 * time.Second}, strings.TrimSuffix(publicURL, "/")+"/health/ready") {
		return fmt.Errorf("kratos at %s is not ready", publicURL)
	}
	return nil
}
