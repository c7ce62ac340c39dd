// Package cluster runs Fanfare as separate OS processes — the event store,
// the broker, every service and saga, the forwarder and the gateway, each
// `fanfare serve <part>` — in front of a real Kratos, and can kill -9 and
// restart any of them. The end-to-end, chaos and scaling tests and
// `fanfare bench e2e` stand on it. With Config.InProcess everything but
// Kratos runs in one `fanfare dev` process instead.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fanfare/fanfare/internal/platform/freeport"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kratos"
)

// Services are the parts with a Connect API, by their route name.
var Services = []string{"accounts", "songs", "chains", "plays", "tipping", "escrow", "reports"}

// Sagas are the parts without an API that react to events.
var Sagas = []string{"royalty", "referral", "crowdfund"}

// Config says how to start a cluster.
type Config struct {
	// Binary runs fanfare: Binary [Args...] serve <part> …. Tests may run
	// their own binary with Args such as -test.run=^$ -- and an Env switch.
	Binary string
	Args   []string
	Env    []string
	// Dir holds every part's data, the shared keys and logs/<part>.log.
	Dir string
	// Instances runs more than one process of a part in the same consumer
	// groups (default 1 each), e.g. {"plays": 2, "royalty": 2}.
	Instances map[string]int
	// InProcess runs every part in one `fanfare dev` process.
	InProcess bool
	// Log reports starts, kills and restarts (default: silent).
	Log func(format string, args ...any)
	// ReadyTimeout bounds each wait for a process to be ready (default 90 s).
	ReadyTimeout time.Duration
}

// Proc is one Fanfare process of the cluster.
type Proc struct {
	Name string // "accounts", "plays-2", "broker", "dev"
	Part string // what it runs: "accounts", "plays", "broker", "dev"
	Addr string // its listen address, kept across restarts
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// Starts counts how many times it was started.
	Starts int
}

// current is the process's latest start and the channel closed when it
// ends.
func (p *Proc) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// Cluster is a running set of processes.
type Cluster struct {
	cfg    Config
	kratos *kratos.Server
	procs  []*Proc
	esAddr string
	gwAddr string
}

// Start starts Kratos, then the event store and the broker, then every
// other part (which wait for their dependencies on their own), and returns
// once every process reports ready.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("cluster: Config.Binary and Config.Dir are required")
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 90 * time.Second
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	// Every part verifies identities against the same key and the songs
	// and chains services sign with theirs: create them once, before any
	// process could race to create its own.
	keys := filepath.Join(cfg.Dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return nil, err
	}
	for _, k := range []string{"identity.key", "registrar.key", "chains.key"} {
		if _, err := identity.LoadOrCreateKey(filepath.Join(keys, k)); err != nil {
			return nil, err
		}
	}
	c = &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.esAddr, err = freeport.Addr(); err != nil {
		return nil, err
	}
	if c.gwAddr, err = freeport.Addr(); err != nil {
		return nil, err
	}
	c.kratos, err = kratos.Start(ctx, kratos.Config{DataDir: filepath.Join(cfg.Dir, "kratos"), PublicAddr: "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0", Env: kratos.UIEnv("http://" + c.gwAddr)})
	if err != nil {
		return nil, err
	}

	if cfg.InProcess {
		kafkaAddr, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		c.procs = []*Proc{{Name: "dev", Part: "dev", Addr: c.gwAddr, args: []string{"dev", "--data-dir", keys,
			"--http", c.gwAddr, "--eventstore-listen", c.esAddr, "--kafka-listen", kafkaAddr, "--kratos-url", c.kratos.PublicURL()}}}
		// dev keeps its event store and broker data under its data dir.
		return c, c.startAll(ctx)
	}

	brokerAddr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	common := []string{"--data-dir", keys, "--eventstore-url", c.EventStoreURL(), "--kafka-brokers", brokerAddr}
	c.procs = append(c.procs,
		&Proc{Name: "eventstore", Part: "eventstore", Addr: c.esAddr, args: []string{"serve", "eventstore", "--data-dir", filepath.Join(cfg.Dir, "eventstore"), "--listen", c.esAddr}},
		&Proc{Name: "broker", Part: "broker", Addr: brokerAddr, args: []string{"serve", "broker", "--data-dir", filepath.Join(cfg.Dir, "kafka"), "--listen", brokerAddr}})
	// add starts a part's instances and returns their addresses.
	add := func(part string) ([]string, error) {
		var addrs []string
		for i := 1; i <= max(cfg.Instances[part], 1); i++ {
			addr, err := freeport.Addr()
			if err != nil {
				return nil, err
			}
			name := part
			if i > 1 {
				name = part + "-" + strconv.Itoa(i)
			}
			c.procs = append(c.procs, &Proc{Name: name, Part: part, Addr: addr,
				args: append([]string{"serve", part, "--listen", addr, "--instance", name}, common...)})
			addrs = append(addrs, addr)
		}
		return addrs, nil
	}
	if _, err := add("forwarder"); err != nil {
		return nil, err
	}
	var routes []string
	for _, s := range Services {
		addrs, err := add(s)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs { // the gateway spreads calls over instances
			routes = append(routes, s+"=http://"+a)
		}
	}
	for _, s := range Sagas {
		if _, err := add(s); err != nil {
			return nil, err
		}
	}
	c.procs = append(c.procs, &Proc{Name: "gateway", Part: "gateway", Addr: c.gwAddr, args: []string{"serve", "gateway",
		"--listen", c.gwAddr, "--data-dir", keys, "--kratos-url", c.kratos.PublicURL(), "--routes", strings.Join(routes, ",")}})
	return c, c.startAll(ctx)
}

func (c *Cluster) startAll(ctx context.Context) error {
	for _, p := range c.procs {
		if err := c.start(p); err != nil {
			return err
		}
	}
	var errs []error
	for _, p := range c.procs {
		errs = append(errs, c.waitReady(ctx, p))
	}
	return errors.Join(errs...)
}

// GatewayURL serves every API, the pages, /healthz and /readyz.
func (c *Cluster) GatewayURL() string { return "http://" + c.gwAddr }

// EventStoreURL is the esdb:// URL of the event store.
func (c *Cluster) EventStoreURL() string { return "esdb://" + c.esAddr + "?tls=false" }

// KratosPublicURL and KratosAdminURL are Kratos' APIs.
func (c *Cluster) KratosPublicURL() string { return c.kratos.PublicURL() }
func (c *Cluster) KratosAdminURL() string  { return c.kratos.AdminURL() }

// Procs are the cluster's processes, in start order.
func (c *Cluster) Procs() []*Proc { return c.procs }

// Proc is the process of that name, or nil.
func (c *Cluster) Proc(name string) *Proc {
	i := slices.IndexFunc(c.procs, func(p *Proc) bool { return p.Name == name })
	if i < 0 {
		return nil
	}
	return c.procs[i]
}

// LogPath is where a process's output goes (appended across restarts).
func (c *Cluster) LogPath(name string) string { return filepath.Join(c.cfg.Dir, "logs", name+".log") }

func (c *Cluster) start(p *Proc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	log, err := os.OpenFile(c.LogPath(p.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(c.cfg.Binary, append(slices.Clone(c.cfg.Args), p.args...)...)
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a signal to the test does not reach it twice,
	// and kill -9 of the part takes nothing else with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(log, "=== start %d: %s\n", p.Starts+1, strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	p.Starts++
	done := p.done
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // an exit is seen through done
	c.cfg.Log("cluster: started %s (pid %d)", p.Name, cmd.Process.Pid)
	return nil
}

// waitReady waits until the process answers: /readyz for parts that serve
// one, a TCP connection for the event store and the broker.
func (c *Cluster) waitReady(ctx context.Context, p *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	_, done := p.current()
	var last error
	for {
		if p.Part == "eventstore" || p.Part == "broker" {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", p.Addr)
			if err == nil {
				conn.Close()
				return nil
			}
			last = err
		} else {
			last = ready(ctx, "http://"+p.Addr+"/readyz")
			if last == nil {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (see %s): %s", p.Name, c.LogPath(p.Name), tail(c.LogPath(p.Name), 2000))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v (see %s)", p.Name, c.cfg.ReadyTimeout, last, c.LogPath(p.Name))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// Kill sends SIGKILL to the process and waits for it to end.
func (c *Cluster) Kill(p *Proc) {
	cmd, done := p.current()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may have ended already
	<-done
	c.cfg.Log("cluster: killed %s (kill -9, pid %d)", p.Name, cmd.Process.Pid)
}

// Restart kills the process with SIGKILL, starts it again on the same
// address and data, and waits until it is ready.
func (c *Cluster) Restart(ctx context.Context, p *Proc) error {
	c.Kill(p)
	if err := c.start(p); err != nil {
		return err
	}
	return c.waitReady(ctx, p)
}

// Exited lists processes that ended without being killed by the cluster,
// with the tail of their logs: a part must never exit on its own.
func (c *Cluster) Exited() error {
	var errs []error
	for _, p := range c.procs {
		_, done := p.current()
		select {
		case <-done:
			errs = append(errs, fmt.Errorf("%s exited: %s", p.Name, tail(c.LogPath(p.Name), 2000)))
		default:
		}
	}
	return errors.Join(errs...)
}

// RSS is the resident set size of each running process, in bytes, from
// /proc (Linux).
func (c *Cluster) RSS() map[string]int64 {
	out := map[string]int64{}
	for _, p := range c.procs {
		cmd, _ := p.current()
		if cmd == nil {
			continue
		}
		if n, err := rss(cmd.Process.Pid); err == nil {
			out[p.Name] = n
		}
	}
	return out
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// Close stops every process (SIGTERM, then SIGKILL after 10 s) and Kratos.
func (c *Cluster) Close() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		cmd, done := p.current()
		if cmd == nil {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have ended already
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // as above
			<-done
		}
	}
	if c.kratos != nil {
		c.kratos.Close()
	}
}

// tail is the end of a log file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
