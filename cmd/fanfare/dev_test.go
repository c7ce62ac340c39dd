package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/freeport"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/tailbuf"
	chainsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/google/uuid"
)

// The test binary doubles as the fanfare binary: with FANFARE_TEST_MAIN set
// it runs main() with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("FANFARE_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"fanfare"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

type proc struct {
	cmd  *exec.Cmd
	logs chan string
	tail *tailbuf.Buffer // the last of its output, shown when the test fails
}

func startFanfare(t *testing.T, args ...string) *proc {
	t.Helper()
	return startFanfareEnv(t, nil, args...)
}

// startFanfareEnv runs the fanfare binary with extra environment variables.
func startFanfareEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "FANFARE_TEST_MAIN=1"), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: make(chan string, 1000), tail: tailbuf.New(64 << 10)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.tail.Write([]byte(line + "\n"))
			// The output is always drained: a full pipe would block the
			// process on its next log line. Lines nobody waits for (more
			// than the buffer holds) are only in the tail.
			select {
			case p.logs <- line:
			default:
			}
		}
		close(p.logs)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select { // a child that inherited the pipe could hold it open
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", strings.Join(args, " "), p.tail)
		}
	})
	return p
}

func (p *proc) waitLog(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.logs:
			if !ok {
				t.Fatalf("process ended before logging %q", substr)
			}
			if strings.Contains(line, substr) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line containing %q", substr)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fanfare dev serves the event store and health endpoints, logs where they
// listen, stops cleanly on SIGTERM and keeps its data across restarts.
func TestDevServesEventStoreAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	httpAddr, esAddr, kafkaAddr := freePort(t), freePort(t), freePort(t)
	args := []string{"dev", "--data-dir", dir, "--http", httpAddr, "--eventstore-listen", esAddr, "--kafka-listen", kafkaAddr,
		"--kratos-listen", freePort(t), "--kratos-admin-listen", freePort(t)}
	p := startFanfare(t, args...)
	if line := p.waitLog(t, "event store listening"); !strings.Contains(line, esAddr) {
		t.Fatalf("log line does not say where the event store listens: %s", line)
	}
	if line := p.waitLog(t, "kafka broker listening"); !strings.Contains(line, kafkaAddr) {
		t.Fatalf("log line does not say where the broker listens: %s", line)
	}
	p.waitLog(t, "forwarder running")
	p.waitLog(t, "fanfare dev is running")
	if code, body := get(t, "http://"+httpAddr+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get(t, "http://"+httpAddr+"/readyz")
		if code == 200 && strings.Contains(body, "eventstore: ready") && strings.Contains(body, "kafka: ready") && strings.Contains(body, "forwarder: ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	regKey := serviceKeys(t, dir, httpAddr)

	url := "esdb://" + esAddr + "?tls=false"
	c, err := eventstore.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	ev := estest.Event("DevProbe", `{"n":1}`)
	estest.Append(t, c, "dev-probe", esdb.NoStream{}, ev)
	// A service event goes through the forwarder to its topic.
	deposit := uuid.New()
	if _, err := eventstore.NewStore(c).Append(context.Background(), "deposit-dev", esdb.Any{},
		eventstore.Pending{ID: deposit, Message: &eventsv1.DepositRequested{DepositId: "dev"}}); err != nil {
		t.Fatal(err)
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Brokers: []string{kafkaAddr}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), "fanfare.accounts.v1")
	if err != nil {
		t.Fatal(err)
	}
	// The topic carries the service's other events too (policy, book batches).
	timeout := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case m := <-msgs:
			m.Ack()
			if m.UUID == deposit.String() {
				if m.Metadata.Get("name") != "fanfare.accounts.v1.DepositRequested" || m.Metadata.Get("stream") != "deposit-dev" {
					t.Fatalf("forwarded message %s %v", m.UUID, m.Metadata)
				}
				found = true
			}
		case <-timeout:
			t.Fatal("the deposit event never reached fanfare.accounts.v1")
		}
	}
	sub.Close()
	c.Close()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fanfare dev did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fanfare dev did not stop within 20s of SIGTERM")
	}

	p2 := startFanfare(t, args...)
	p2.waitLog(t, "fanfare dev is running")
	if again := serviceKeys(t, dir, httpAddr); !again.Equal(regKey) {
		t.Fatal("the registrar's signing key changed across a restart: signed descriptions would no longer verify")
	}
	c2, err := eventstore.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	evs, err := estest.ReadStream(t, c2, "dev-probe", esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	if err != nil || len(evs) != 1 || evs[0].EventID != ev.EventID {
		t.Fatalf("after restart the event is gone: %d events, %v", len(evs), err)
	}
}

// The bench command prints one JSON object on its last line.
func TestBenchPrintsJSONLastLine(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "bench", "eventstore", "--json", "--duration", "200ms")
	cmd.Env = append(os.Environ(), "FANFARE_TEST_MAIN=1")
	out, _ := cmd.Output() // floors are not judged on a 200 ms run; the shape is
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Scenario string                    `json:"scenario"`
		Figures  map[string]map[string]any `json:"figures"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q (%v)", lines[len(lines)-1], err)
	}
	num := func(fig, key string) float64 { v, _ := res.Figures[fig][key].(float64); return v }
	if res.Scenario != "eventstore" || num("append_batch_100", "events_per_sec") <= 0 || num("read_all_client_1_readers", "events") <= 0 ||
		num("read_all_client_4_readers", "events") != num("read_all_client_1_readers", "events") || num("read_all_server_wire_1_readers", "events_per_sec") <= 0 {
		t.Fatalf("figures missing: %+v", res)
	}
}

// serviceKeys calls the songs and chains APIs of a running dev process with
// an identity signed by the data directory's key, checks each answers with
// the key kept in the data directory (and that the tipping service answers
// with the default settings), and returns the registrar's.
func serviceKeys(t *testing.T, dir, httpAddr string) ed25519.PublicKey {
	t.Helper()
	idKey, err := identity.LoadOrCreateKey(filepath.Join(dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	as := connect.WithInterceptors(identity.CallAs(idKey, identity.Identity{ID: "dev-test"}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := songsv1connect.NewSongsServiceClient(http.DefaultClient, "http://"+httpAddr, as).GetRegistrarKeys(ctx, connect.NewRequest(&songsv1.GetRegistrarKeysRequest{}))
	if err != nil {
		t.Fatalf("songs service through fanfare dev: %v", err)
	}
	regKey, err := identity.LoadOrCreateKey(filepath.Join(dir, "registrar.key"))
	if err != nil || !regKey.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(reg.Msg.SigningKey)) {
		t.Fatalf("the registrar does not sign with <data-dir>/registrar.key (%v)", err)
	}
	ch, err := chainsv1connect.NewChainsServiceClient(http.DefaultClient, "http://"+httpAddr, as).GetServiceKeys(ctx, connect.NewRequest(&chainsv1.GetServiceKeysRequest{}))
	if err != nil {
		t.Fatalf("chains service through fanfare dev: %v", err)
	}
	chKey, err := identity.LoadOrCreateKey(filepath.Join(dir, "chains.key"))
	if err != nil || !chKey.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(ch.Msg.SigningKey)) {
		t.Fatalf("the chains service does not sign with <data-dir>/chains.key (%v)", err)
	}
	tips, err := tippingv1connect.NewTippingServiceClient(http.DefaultClient, "http://"+httpAddr, as).GetTipSettings(ctx, connect.NewRequest(&tippingv1.GetTipSettingsRequest{}))
	if err != nil || tips.Msg.Settings.ThumbsUpAmount != "0.50" || tips.Msg.Settings.AutoTipMonthlyBudget != "5.00" {
		t.Fatalf("tipping service through fanfare dev: %v %v", tips, err)
	}
	esc, err := escrowv1connect.NewEscrowServiceClient(http.DefaultClient, "http://"+httpAddr, as).GetEscrow(ctx, connect.NewRequest(&escrowv1.GetEscrowRequest{}))
	if err != nil || esc.Msg.Escrow.Balance != "0.00000000" || esc.Msg.Escrow.Quorum != 2 {
		t.Fatalf("escrow service through fanfare dev: %v %v", esc, err)
	}
	return ed25519.PublicKey(reg.Msg.SigningKey)
}
