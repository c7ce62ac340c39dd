package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
)

// devStack is a `fanfare dev` process (the real binary: this test binary
// runs main) with its own Kratos, on free ports.
type devStack struct {
	proc                     *proc
	dir, url                 string
	kratosPublic, kratosAdmn string
}

func startDev(t *testing.T) *devStack {
	t.Helper()
	// Build Kratos first (cached): the first build takes minutes, longer
	// than startFanfare waits for log lines.
	bctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	if _, err := kratos.Binary(bctx); err != nil {
		t.Fatalf("build kratos: %v", err)
	}
	s := &devStack{dir: t.TempDir()}
	httpAddr, kpub, kadm := freePort(t), freePort(t), freePort(t)
	s.url, s.kratosPublic, s.kratosAdmn = "http://"+httpAddr, "http://"+kpub, "http://"+kadm
	s.proc = startFanfare(t, "dev", "--data-dir", s.dir, "--http", httpAddr, "--eventstore-listen", freePort(t),
		"--kafka-listen", freePort(t), "--kratos-listen", kpub, "--kratos-admin-listen", kadm)
	s.proc.waitLog(t, "fanfare dev is running")
	servicetest.Eventually(t, "fanfare dev ready", func() error {
		code, body := get(t, s.url+"/readyz")
		if code != 200 {
			return errorString(body)
		}
		return nil
	})
	return s
}

type errorString string

func (e errorString) Error() string { return string(e) }

// person is a real Kratos identity with a native session.
type person struct {
	email, id, token string
}

const testPassword = "fanfare-test-password-7"

// register signs up through Kratos' registration flow and grants roles
// through its admin API (as `fanfare roles grant` does).
func (s *devStack) register(t *testing.T, name string, roles ...string) person {
	t.Helper()
	ctx := servicetest.Ctx(t)
	email := strings.ToLower(name) + "@fanfare.test"
	token, id, err := kratos.RegisterNative(ctx, s.kratosPublic, email, name, testPassword)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	for _, r := range roles {
		if _, err := kratos.NewAdmin(s.kratosAdmn).Grant(ctx, email, r); err != nil {
			t.Fatalf("grant %s %s: %v", email, r, err)
		}
	}
	return person{email: email, id: id, token: token}
}

// session sends a person's Kratos session token with every call.
func (p person) session() connect.ClientOption {
	return connect.WithInterceptors(kratos.WithSession(p.token))
}

func (s *devStack) accounts(p person) accountsv1connect.AccountsServiceClient {
	return accountsv1connect.NewAccountsServiceClient(http.DefaultClient, s.url, p.session())
}

func (s *devStack) reports(p person) reportsv1connect.ReportsServiceClient {
	return reportsv1connect.NewReportsServiceClient(http.DefaultClient, s.url, p.session())
}

func denied(t *testing.T, what string, err error, role string) {
	t.Helper()
	if servicetest.Code(err) != connect.CodePermissionDenied {
		t.Fatalf("%s: err = %v, want permission_denied", what, err)
	}
	if !strings.Contains(err.Error(), role) {
		t.Fatalf("%s: %q does not say which role is missing (%s)", what, err, role)
	}
	t.Logf("denied as it should be: %s: %v", what, err)
}

// TestGatewayAuthorizationWithRealSessions registers real identities with
// the Kratos that `fanfare dev` starts, grants roles through the admin
// API, and calls every service through the gateway with the sessions: a
// new identity's accounts open on first use, and each forbidden call is
// refused naming the role it lacks.
func TestGatewayAuthorizationWithRealSessions(t *testing.T) {
	s := startDev(t)
	ctx := servicetest.Ctx(t)
	ann, bob := s.register(t, "Ann"), s.register(t, "Bob")
	ava, cy := s.register(t, "Ava", "artist"), s.register(t, "Cy", "artist")
	fin, aud := s.register(t, "Fin", "finance"), s.register(t, "Aud", "auditor")

	// First use opens the wallets and pays the welcome credit.
	for _, p := range []person{ann, bob, ava, cy} {
		b, err := s.accounts(p).GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + p.id + ":USD"}))
		if err != nil {
			t.Fatalf("%s's first call: %v", p.email, err)
		}
		if b.Msg.Total != "5.00" {
			t.Fatalf("%s: balance %s after first use, want the 5.00 welcome credit", p.email, b.Msg.Total)
		}
	}

	// No session, or a session Kratos does not know: unauthenticated.
	_, err := accountsv1connect.NewAccountsServiceClient(http.DefaultClient, s.url).GetBalance(ctx,
		connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + ann.id + ":USD"}))
	if servicetest.Code(err) != connect.CodeUnauthenticated {
		t.Fatalf("no session: %v", err)
	}
	_, err = s.accounts(person{token: "ory_st_forged"}).GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + ann.id + ":USD"}))
	if servicetest.Code(err) != connect.CodeUnauthenticated {
		t.Fatalf("forged session: %v", err)
	}

	// A listener moving another listener's money.
	_, err = s.accounts(ann).RequestWithdrawal(ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "steal-1",
		AccountId: "wallet:" + bob.id + ":USD", Amount: "1.00", Destination: "DE00"}))
	denied(t, "ann withdrawing from bob's wallet", err, "needs its owner")
	_, err = s.accounts(ann).RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "dep-into-bob",
		AccountId: "wallet:" + bob.id + ":USD", Amount: "1.00"}))
	denied(t, "ann depositing into bob's wallet", err, "needs its owner")

	// A listener approving an escrow release.
	esc := escrowv1connect.NewEscrowServiceClient(http.DefaultClient, s.url, ann.session())
	_, err = esc.ApproveRelease(ctx, connect.NewRequest(&escrowv1.ApproveReleaseRequest{ProposalId: "any"}))
	denied(t, "listener approving a release", err, "moderator role")

	// An artist reading another artist's dashboard.
	_, err = s.reports(ava).GetArtistDashboard(ctx, connect.NewRequest(&reportsv1.GetArtistDashboardRequest{ArtistId: cy.id}))
	denied(t, "ava reading cy's dashboard", err, "finance or auditor role")

	// Anyone but finance confirming deposits or settling withdrawals.
	dep, err := s.accounts(ann).RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "ann-dep-1",
		AccountId: "wallet:" + ann.id + ":USD", Amount: "20.00"}))
	if err != nil {
		t.Fatal(err)
	}
	wd, err := s.accounts(ann).RequestWithdrawal(ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "ann-wd-1",
		AccountId: "wallet:" + ann.id + ":USD", Amount: "1.00", Destination: "DE00"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []person{ann, ava, aud} {
		_, err = s.accounts(p).ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-" + p.id, DepositId: dep.Msg.DepositId, RailReference: "x"}))
		denied(t, p.email+" confirming a deposit", err, "finance role")
		_, err = s.accounts(p).SettleWithdrawal(ctx, connect.NewRequest(&accountsv1.SettleWithdrawalRequest{RequestId: "s-" + p.id, WithdrawalId: wd.Msg.WithdrawalId, RailReference: "x"}))
		denied(t, p.email+" settling a withdrawal", err, "finance role")
	}

	// Anyone but an auditor or finance running an audit or an export.
	for _, p := range []person{ann, ava} {
		_, err = s.reports(p).RunAudit(ctx, connect.NewRequest(&reportsv1.RunAuditRequest{}))
		denied(t, p.email+" running an audit", err, "auditor")
		stream, err := s.reports(p).ExportSettlement(ctx, connect.NewRequest(&reportsv1.ExportSettlementRequest{From: "2026-01-01", To: "2026-12-31"}))
		if err == nil {
			for stream.Receive() {
				t.Fatalf("%s received an export chunk", p.email)
			}
			err = stream.Err()
		}
		denied(t, p.email+" exporting a settlement", err, "finance")
	}

	// The same calls go through for the roles that hold them.
	if _, err := s.accounts(fin).ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "fin-c-1", DepositId: dep.Msg.DepositId, RailReference: "bank-1"})); err != nil {
		t.Fatalf("finance confirming: %v", err)
	}
	if _, err := s.accounts(fin).SettleWithdrawal(ctx, connect.NewRequest(&accountsv1.SettleWithdrawalRequest{RequestId: "fin-s-1", WithdrawalId: wd.Msg.WithdrawalId, RailReference: "bank-2"})); err != nil {
		t.Fatalf("finance settling: %v", err)
	}
	servicetest.Eventually(t, "ann's balance after the deposit and the withdrawal", func() error {
		b, err := s.accounts(ann).GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + ann.id + ":USD"}))
		if err != nil {
			return err
		}
		if b.Msg.Total != "24.00" || b.Msg.Held != "0.00" {
			return errorString("total " + b.Msg.Total + " held " + b.Msg.Held + ", want 24.00 and 0.00")
		}
		return nil
	})
	// Bob's wallet was never touched by ann's attempts.
	b, err := s.accounts(bob).GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: "wallet:" + bob.id + ":USD"}))
	if err != nil || b.Msg.Total != "5.00" || b.Msg.Held != "0.00" {
		t.Fatalf("bob's wallet: %v %v", b, err)
	}
	// The audit compares with the reports projection, which follows the
	// ledger through Kafka: it is clean once the projection caught up.
	servicetest.Eventually(t, "a clean audit by the auditor", func() error {
		audit, err := s.reports(aud).RunAudit(ctx, connect.NewRequest(&reportsv1.RunAuditRequest{}))
		if err != nil {
			t.Fatalf("auditor running an audit: %v", err)
		}
		if !audit.Msg.Clean || len(audit.Msg.Hash) != 64 {
			return fmt.Errorf("audit: clean=%v hash=%q violations=%v differences=%v", audit.Msg.Clean, audit.Msg.Hash, audit.Msg.Violations, audit.Msg.Differences)
		}
		return nil
	})
	if _, err := s.reports(ava).GetArtistDashboard(ctx, connect.NewRequest(&reportsv1.GetArtistDashboardRequest{ArtistId: ava.id})); err != nil {
		t.Fatalf("ava reading her own dashboard: %v", err)
	}
}
