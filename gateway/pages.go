package gateway

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
)

//go:embed web/*.html
var webFS embed.FS

var pagesTmpl = template.Must(template.New("pages").ParseFS(webFS, "web/*.html"))

// page is what every page template gets.
type page struct {
	Title        string
	User         *User
	Flash, Error string
	Data         any
}

// pages mounts the web pages, rendered on the server. Forms post back to
// the gateway (cross-origin posts are refused) and the gateway calls the
// services as the logged-in user, exactly as the API would.
func (g *Gateway) pages() {
	csrf := http.NewCrossOriginProtection()
	post := func(pattern string, h http.HandlerFunc) { g.mux.Handle("POST "+pattern, csrf.Handler(h)) }
	g.mux.HandleFunc("GET /{$}", g.home)
	g.mux.HandleFunc("GET /login", g.flow("login"))
	g.mux.HandleFunc("GET /registration", g.flow("registration"))
	g.mux.HandleFunc("GET /error", g.flowError)
	g.mux.HandleFunc("GET /logout", g.logout)
	g.mux.HandleFunc("GET /wallet", g.wallet)
	post("/wallet/tip", g.tip)
	post("/wallet/pledge", g.pledge)
	g.mux.HandleFunc("GET /artist", g.artist)
	g.mux.HandleFunc("GET /artist/live", g.artistLive)
	g.mux.HandleFunc("GET /finance", g.finance)
	post("/finance/confirm", g.financeAction)
	post("/finance/settle", g.financeAction)
	post("/finance/reject", g.financeAction)
	g.mux.HandleFunc("GET /finance/export", g.export)
	g.mux.HandleFunc("GET /audit", g.audit)
	post("/audit", g.audit)
}

func (g *Gateway) render(w http.ResponseWriter, status int, name string, p any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pagesTmpl.ExecuteTemplate(w, name, p); err != nil {
		g.cfg.Log.Error("render page", "page", name, "err", err)
	}
}

// pageUser is the logged-in browser user, admitted like an API call;
// without a session it redirects to the login page and returns nil.
func (g *Gateway) pageUser(w http.ResponseWriter, r *http.Request) *User {
	cookie := r.Header.Get("Cookie")
	if !strings.Contains(cookie, sessionCookie) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	u, err := g.cfg.Kratos.Check(r.Context(), "", cookie)
	if err == nil {
		err = g.admit(r.Context(), u)
	}
	if err != nil {
		if apperr.Code(err) == connect.CodeUnauthenticated {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return nil
		}
		g.fail(w, nil, err)
		return nil
	}
	return &u
}

// fail renders a service error as a page, with the status its code means.
func (g *Gateway) fail(w http.ResponseWriter, u *User, err error) {
	g.render(w, httpStatus(apperr.Code(err)), "message", page{Title: "Something went wrong", User: u, Data: errorText(err)})
}

func errorText(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String() + ": " + ce.Message()
	}
	return apperr.Code(err).String() + ": " + err.Error()
}

func (g *Gateway) home(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	g.render(w, http.StatusOK, "home", page{Title: "Home", User: u})
}

// ---- Kratos browser flows -------------------------------------------------

type flowView struct {
	Action, Method string
	Messages       []flowMessage
	Nodes          []flowNode
}

type flowMessage struct{ Type, Text string }

type flowNode struct {
	Type, Name, Value, Label, Autocomplete string
	Required                               bool
	Messages                               []flowMessage
}

// flow shows a Kratos login or registration flow; without ?flow= it has
// Kratos start one (Kratos redirects back here with its id).
func (g *Gateway) flow(kind string) http.HandlerFunc {
	title := map[string]string{"login": "Log in", "registration": "Register"}[kind]
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("flow")
		if id == "" {
			start := g.cfg.Kratos.PublicURL() + "/self-service/" + kind + "/browser"
			if g.cfg.PublicURL != "" {
				start += "?return_to=" + url.QueryEscape(g.cfg.PublicURL+"/")
			}
			http.Redirect(w, r, start, http.StatusSeeOther)
			return
		}
		ui, err := g.cfg.Kratos.flowUI(r.Context(), kind, id, r.Header.Get("Cookie"))
		if err != nil {
			// An expired or foreign flow: start a new one.
			g.cfg.Log.Info("kratos flow not usable; starting a new one", "kind", kind, "err", err)
			http.Redirect(w, r, "/"+kind, http.StatusSeeOther)
			return
		}
		g.render(w, http.StatusOK, "flow", flowPage{page: page{Title: title}, Kind: kind, Flow: ui})
	}
}

type flowPage struct {
	page
	Kind string
	Flow flowView
}

func (g *Gateway) flowError(w http.ResponseWriter, r *http.Request) {
	msg, err := g.cfg.Kratos.flowError(r.Context(), r.URL.Query().Get("id"))
	if err != nil {
		msg = "unknown error"
	}
	g.render(w, http.StatusOK, "message", page{Title: "Login error", Data: msg})
}

func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	u, err := g.cfg.Kratos.logoutURL(r.Context(), r.Header.Get("Cookie"))
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// ---- listener wallet ------------------------------------------------------

type walletView struct {
	Balances  []*accountsv1.GetBalanceResponse
	Statement []*accountsv1.StatementEntry
	RequestID string
}

func (g *Gateway) accounts(who identity.Identity) accountsv1connect.AccountsServiceClient {
	c, base := g.client(accountsv1connect.AccountsServiceName)
	return accountsv1connect.NewAccountsServiceClient(c, base, g.as(who))
}

func (g *Gateway) wallet(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	acc := g.accounts(u.Identity)
	var v walletView
	for _, asset := range []string{"USD", "FAN"} {
		b, err := acc.GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: accdomain.WalletID(u.ID, asset)}))
		if err != nil {
			g.fail(w, u, err)
			return
		}
		v.Balances = append(v.Balances, b.Msg)
	}
	st, err := acc.ListStatement(ctx, connect.NewRequest(&accountsv1.ListStatementRequest{AccountId: accdomain.WalletID(u.ID, "USD"), PageSize: 50}))
	if err != nil {
		g.fail(w, u, err)
		return
	}
	v.Statement = st.Msg.Entries
	// A fresh idempotency key per rendered form: submitting the same form
	// twice moves money once.
	v.RequestID = uuid.NewString()
	q := r.URL.Query()
	g.render(w, http.StatusOK, "wallet", page{Title: "Wallet", User: u, Data: v, Flash: q.Get("ok"), Error: q.Get("error")})
}

// back redirects to path with the outcome of a form.
func back(w http.ResponseWriter, r *http.Request, path, ok string, err error) {
	q := url.Values{}
	if err != nil {
		q.Set("error", errorText(err))
	} else {
		q.Set("ok", ok)
	}
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

func (g *Gateway) tip(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	c, base := g.client(tippingv1connect.TippingServiceName)
	tips := tippingv1connect.NewTippingServiceClient(c, base, g.as(u.Identity))
	res, err := tips.Tip(r.Context(), connect.NewRequest(&tippingv1.TipRequest{RequestId: r.FormValue("request_id"),
		SongId: strings.TrimSpace(r.FormValue("song_id")), Amount: strings.TrimSpace(r.FormValue("amount"))}))
	if err == nil {
		t := res.Msg.GetTip()
		back(w, r, "/wallet", fmt.Sprintf("Tip %s: %s", t.GetTipId(), statusText(t.GetStatus().String())), nil)
		return
	}
	back(w, r, "/wallet", "", err)
}

func (g *Gateway) pledge(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	c, base := g.client(escrowv1connect.EscrowServiceName)
	esc := escrowv1connect.NewEscrowServiceClient(c, base, g.as(u.Identity))
	res, err := esc.Pledge(r.Context(), connect.NewRequest(&escrowv1.PledgeRequest{RequestId: r.FormValue("request_id"),
		CampaignId: strings.TrimSpace(r.FormValue("campaign_id")), Amount: strings.TrimSpace(r.FormValue("amount"))}))
	if err == nil {
		p := res.Msg.GetPledge()
		back(w, r, "/wallet", fmt.Sprintf("Pledge %s: %s", p.GetPledgeId(), statusText(p.GetStatus())), nil)
		return
	}
	back(w, r, "/wallet", "", err)
}

// statusText is an enum value as people read it: STATUS_COMPLETED → completed.
func statusText(enum string) string {
	if _, after, ok := strings.Cut(enum, "STATUS_"); ok {
		enum = after
	}
	return strings.ReplaceAll(strings.ToLower(enum), "_", " ")
}

// ---- artist dashboard -----------------------------------------------------

func (g *Gateway) reports(u *User) reportsv1connect.ReportsServiceClient {
	c, base := g.client(reportsv1connect.ReportsServiceName)
	return reportsv1connect.NewReportsServiceClient(c, base, g.as(u.Identity))
}

// artistOf is the dashboard asked for: ?artist=, or the caller's own.
func artistOf(r *http.Request, u *User) string {
	if a := r.URL.Query().Get("artist"); a != "" {
		return a
	}
	return u.ID
}

func (g *Gateway) artist(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	artist := artistOf(r, u)
	res, err := g.reports(u).GetArtistDashboard(r.Context(), connect.NewRequest(&reportsv1.GetArtistDashboardRequest{ArtistId: artist}))
	if err != nil {
		g.fail(w, u, err)
		return
	}
	name := artist
	if artist == u.ID && u.Name != "" {
		name = u.Name
	}
	g.render(w, http.StatusOK, "artist", page{Title: "Dashboard", User: u, Data: struct {
		Artist, LiveURL string
		Dashboard       dashboardView
	}{name, "/artist/live?artist=" + url.QueryEscape(artist), viewDashboard(res.Msg.GetDashboard())}})
}

// artistLive streams the dashboard as Server-Sent Events: the rendered
// fragment now and after every change the reports service announces.
func (g *Gateway) artistLive(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := g.reports(u).WatchArtistDashboard(ctx, connect.NewRequest(&reportsv1.WatchArtistDashboardRequest{ArtistId: artistOf(r, u)}))
	if err != nil {
		g.fail(w, u, err)
		return
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	for stream.Receive() {
		var b strings.Builder
		if err := pagesTmpl.ExecuteTemplate(&b, "dashboard", viewDashboard(stream.Msg().GetDashboard())); err != nil {
			g.cfg.Log.Error("render dashboard", "err", err)
			return
		}
		writeEvent(w, "dashboard", b.String())
		flusher.Flush()
	}
	if err := stream.Err(); err != nil && ctx.Err() == nil {
		writeEvent(w, "failed", errorText(err))
		flusher.Flush()
	}
}

// writeEvent writes one SSE event; every line of data gets its own data:
// field.
func writeEvent(w io.Writer, event, data string) {
	fmt.Fprintf(w, "event: %s\n", event)
	for line := range strings.SplitSeq(data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	io.WriteString(w, "\n")
}

// ---- finance --------------------------------------------------------------

func (g *Gateway) finance(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	res, err := g.reports(u).ListPendingTransfers(r.Context(), connect.NewRequest(&reportsv1.ListPendingTransfersRequest{}))
	if err != nil {
		g.fail(w, u, err)
		return
	}
	var v struct {
		Deposits, Withdrawals []*reportsv1.PendingTransfer
		From, To              string
	}
	for _, t := range res.Msg.Transfers {
		if t.Kind == "deposit" {
			v.Deposits = append(v.Deposits, t)
		} else {
			v.Withdrawals = append(v.Withdrawals, t)
		}
	}
	today := g.cfg.Now().UTC()
	v.From, v.To = today.AddDate(0, 0, -30).Format(time.DateOnly), today.Format(time.DateOnly)
	q := r.URL.Query()
	g.render(w, http.StatusOK, "finance", page{Title: "Finance", User: u, Data: v, Flash: q.Get("ok"), Error: q.Get("error")})
}

// financeAction confirms a deposit, settles or rejects a withdrawal. The
// request id is derived from the transfer, so a repeated click does the
// same thing once.
func (g *Gateway) financeAction(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	acc := g.accounts(u.Identity)
	id, ref := r.FormValue("id"), strings.TrimSpace(r.FormValue("rail_reference"))
	var err error
	var done string
	switch r.URL.Path {
	case "/finance/confirm":
		_, err = acc.ConfirmDeposit(r.Context(), connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "confirm/" + id, DepositId: id, RailReference: ref}))
		done = "Deposit " + id + " confirmed"
	case "/finance/settle":
		_, err = acc.SettleWithdrawal(r.Context(), connect.NewRequest(&accountsv1.SettleWithdrawalRequest{RequestId: "settle/" + id, WithdrawalId: id, RailReference: ref}))
		done = "Withdrawal " + id + " settled"
	default:
		_, err = acc.RejectWithdrawal(r.Context(), connect.NewRequest(&accountsv1.RejectWithdrawalRequest{RequestId: "reject/" + id, WithdrawalId: id, Reason: strings.TrimSpace(r.FormValue("reason"))}))
		done = "Withdrawal " + id + " rejected"
	}
	back(w, r, "/finance", done, err)
}

// export downloads the settlement report as the reports service streams it.
func (g *Gateway) export(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	stream, err := g.reports(u).ExportSettlement(r.Context(), connect.NewRequest(&reportsv1.ExportSettlementRequest{From: q.Get("from"), To: q.Get("to"), Format: format}))
	if err != nil {
		g.fail(w, u, err)
		return
	}
	defer stream.Close()
	// The first chunk decides between a download and an error page.
	if !stream.Receive() {
		err := stream.Err()
		if err == nil {
			err = errors.New("the export was empty")
		}
		g.fail(w, u, err)
		return
	}
	ext := map[string]string{"csv": "csv", "json": "json", "dsr": "tsv"}[format]
	w.Header().Set("Content-Type", map[string]string{"csv": "text/csv", "json": "application/json", "dsr": "text/tab-separated-values"}[format])
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("settlement-%s-%s.%s", q.Get("from"), q.Get("to"), ext)))
	w.Write(stream.Msg().Chunk) //nolint:errcheck
	for stream.Receive() {
		if _, err := w.Write(stream.Msg().Chunk); err != nil {
			return
		}
	}
	if err := stream.Err(); err != nil {
		// Headers are gone: cut the download short so it is not mistaken
		// for a whole file.
		g.cfg.Log.Error("settlement export failed mid-download", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// ---- audit ----------------------------------------------------------------

func (g *Gateway) audit(w http.ResponseWriter, r *http.Request) {
	u := g.pageUser(w, r)
	if u == nil {
		return
	}
	p := page{Title: "Audit", User: u}
	if r.Method == http.MethodPost {
		res, err := g.reports(u).RunAudit(r.Context(), connect.NewRequest(&reportsv1.RunAuditRequest{}))
		if err != nil {
			g.fail(w, u, err)
			return
		}
		p.Data = res.Msg
	} else if err := identity.RequireAny(u.Identity, identity.RoleAuditor, identity.RoleFinance); err != nil {
		// Say so before anyone presses the button.
		g.fail(w, u, err)
		return
	}
	g.render(w, http.StatusOK, "audit", p)
}
