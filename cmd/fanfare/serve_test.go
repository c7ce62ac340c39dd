package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/kratos/kratostest"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
)

// TestServeDistributed runs parts as separate processes with `fanfare
// serve`: the accounts service first (configured through the environment
// alone; it waits for the event store and the broker instead of exiting),
// then the event store, the broker, the forwarder and the gateway (routing
// by URL) in front of a real Kratos. Money moves through the gateway with
// real sessions, survives a kill -9 of the accounts process, and moves
// again after its restart, and after the event store's: the accounts
// part stops on the lost store and is rebuilt inside its process.
func TestServeDistributed(t *testing.T) {
	dir := t.TempDir()
	esAddr, kafkaAddr, accAddr, gwAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	esURL := "esdb://" + esAddr + "?tls=false"
	gwURL := "http://" + gwAddr
	k := kratostest.Start(t, kratos.UIEnv(gwURL)...)

	accEnv := []string{"FANFARE_EVENTSTORE_URL=" + esURL, "FANFARE_KAFKA_BROKERS=" + kafkaAddr, "FANFARE_LISTEN=" + accAddr, "FANFARE_DATA_DIR=" + dir}
	acc := startFanfareEnv(t, accEnv, "serve", "accounts")
	acc.waitLog(t, "waiting for a dependency")
	// Its port answers before its API exists: unavailable, not a 404.
	_, err := accountsv1connect.NewAccountsServiceClient(http.DefaultClient, "http://"+accAddr).
		GetBalance(servicetest.Ctx(t), connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:x:USD"}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "accounts is starting") {
		t.Fatalf("a call to a part that is still starting: %v, want unavailable", err)
	}

	esArgs := []string{"serve", "eventstore", "--data-dir", dir + "/eventstore", "--listen", esAddr}
	es := startFanfare(t, esArgs...)
	es.waitLog(t, "event store listening")
	startFanfare(t, "serve", "broker", "--data-dir", dir+"/kafka", "--listen", kafkaAddr).waitLog(t, "kafka broker listening")
	startFanfare(t, "serve", "forwarder", "--data-dir", dir, "--eventstore-url", esURL, "--kafka-brokers", kafkaAddr).waitLog(t, "forwarder running")
	acc.waitLog(t, "accounts running")
	gw := startFanfare(t, "serve", "gateway", "--data-dir", dir, "--listen", gwAddr, "--kratos-url", k.PublicURL(),
		"--routes", "accounts=http://"+accAddr)
	gw.waitLog(t, "gateway listening")

	ctx := servicetest.Ctx(t)
	register := func(name string, roles ...string) person {
		email := strings.ToLower(name) + "@fanfare.test"
		p := person{email: email}
		p.token, p.id = kratostest.Register(t, ctx, k.PublicURL(), email, name, testPassword)
		for _, r := range roles {
			if _, err := kratos.NewAdmin(k.AdminURL()).Grant(ctx, email, r); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	ann, fin := register("Ann"), register("Fin", "finance")
	accounts := func(p person) accountsv1connect.AccountsServiceClient {
		return accountsv1connect.NewAccountsServiceClient(http.DefaultClient, gwURL, p.session(), connect.WithGRPC())
	}
	balance := func(want string) {
		t.Helper()
		servicetest.Eventually(t, "ann's balance "+want, func() error {
			b, err := accounts(ann).GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + ann.id + ":USD"}))
			if err != nil {
				return err
			}
			if b.Msg.Total != want {
				return errorString("total " + b.Msg.Total)
			}
			return nil
		})
	}
	deposit := func(id, amount string) {
		t.Helper()
		d, err := accounts(ann).RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: id, AccountId: "wallet:" + ann.id + ":USD", Amount: amount}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := accounts(fin).ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-" + id, DepositId: d.Msg.DepositId, RailReference: "bank"})); err != nil {
			t.Fatal(err)
		}
	}
	balance("5.00") // opened on first use, through the gateway, in another process
	deposit("d1", "20.00")
	balance("25.00")

	if err := acc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	acc.cmd.Wait() //nolint:errcheck // killed
	acc2 := startFanfareEnv(t, accEnv, "serve", "accounts")
	acc2.waitLog(t, "accounts running")
	balance("25.00")
	deposit("d1", "20.00") // a repeat: the same outcome, nothing moves
	deposit("d2", "1.50")
	balance("26.50")

	// The event store killed under the running parts and started again:
	// the accounts process stays up (a part that stops on the lost store is
	// rebuilt inside it) and money moves again; the same request id retried
	// through the outage moves it once.
	if err := es.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	es.cmd.Wait() //nolint:errcheck // killed
	startFanfare(t, esArgs...).waitLog(t, "event store listening")
	servicetest.Eventually(t, "a deposit after the event store's restart", func() error {
		d, err := accounts(ann).RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "d3", AccountId: "wallet:" + ann.id + ":USD", Amount: "0.25"}))
		if err != nil {
			return err
		}
		_, err = accounts(fin).ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-d3", DepositId: d.Msg.DepositId, RailReference: "bank"}))
		return err
	})
	balance("26.75")
	if acc2.cmd.ProcessState != nil {
		t.Fatalf("the accounts process ended: %v", acc2.cmd.ProcessState)
	}

	// Each part serves Prometheus metrics: the restarted accounts process
	// has committed ledger batches since (lag is reported per partition once
	// a poll returns records: internal/platform/kafka tests it).
	code, body := get(t, "http://"+accAddr+"/metrics")
	for _, m := range []string{"fanfare_ledger_batch_size_count{book=\"USD\"}", "fanfare_ledger_commit_seconds_bucket", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Fatalf("accounts /metrics (%d) lacks %s:\n%s", code, m, body)
		}
	}
}
