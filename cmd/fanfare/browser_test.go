package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	"github.com/fanfare/fanfare/internal/platform/browser"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	songsdomain "github.com/fanfare/fanfare/services/songs/domain"
)

// registerInBrowser signs up on the gateway's registration page (a Kratos
// browser flow) and lands on the home page, logged in.
func registerInBrowser(t *testing.T, s *devStack, tab context.Context, name, email string) {
	t.Helper()
	browser.Do(t, tab,
		chromedp.Navigate(s.url+"/registration"),
		chromedp.WaitVisible(`form#flow input[name="traits.email"]`),
		chromedp.SetValue(`input[name="traits.email"]`, email),
		chromedp.SetValue(`input[name="traits.display_name"]`, name),
		chromedp.SetValue(`input[name="password"]`, testPassword),
	)
	browser.Screenshot(t, tab, "registration "+name)
	browser.Do(t, tab, chromedp.Click(`form#flow button[type="submit"]`), chromedp.WaitVisible(`a[href="/logout"]`))
	if got := browser.Run(t, tab, chromedp.Text("main h1")); got != "Welcome, "+name {
		t.Fatalf("after registering %s the page says %q", name, got)
	}
}

// loginInBrowser logs in on the gateway's login page.
func loginInBrowser(t *testing.T, s *devStack, tab context.Context, email string) {
	t.Helper()
	browser.Do(t, tab,
		chromedp.Navigate(s.url+"/login"),
		chromedp.WaitVisible(`form#flow input[name="identifier"]`),
		chromedp.SetValue(`input[name="identifier"]`, email),
		chromedp.SetValue(`input[name="password"]`, testPassword),
		chromedp.Click(`form#flow button[type="submit"]`),
		chromedp.WaitVisible(`a[href="/logout"]`),
	)
}

func song(title, artist string) *songsv1.Description {
	fp := make([]uint32, 200)
	for i := range fp {
		fp[i] = uint32(i*2654435761) ^ uint32(len(title))
	}
	h := sha256.Sum256([]byte(title + artist))
	return &songsv1.Description{
		Title: title, Artists: []string{"Ava"}, Album: "Live", Genre: "Pop", Year: 2026, DurationMs: 4000,
		Format: "audio/mpeg", ContentHash: hex.EncodeToString(h[:]), Fingerprint: songsdomain.CompressFingerprint(1, fp),
		Splits: []*songsv1.Split{{PayeeId: artist, Percent: "100"}}, Price: "0.99", CopyrightHolder: "Ava",
		DistributorPolicy: &songsv1.DistributorPolicy{Mode: "percent", Payer: "holder", Percent: []string{"10"}},
	}
}

// TestBrowserArtistDashboardUpdatesLive drives Debian's Chromium through
// the gateway's pages of a real `fanfare dev` (with its Kratos): an artist
// and a listener register in the browser, the artist registers a song,
// the listener deposits (finance confirms on the finance page), plays the
// song through the heartbeat API and tips on the wallet page, and the
// artist's dashboard, open the whole time, shows the play and the tip
// without a reload. Finance then downloads the settlement export and runs
// an audit replay on the audit page. Screenshots land in .artifacts/.
func TestBrowserArtistDashboardUpdatesLive(t *testing.T) {
	began := time.Now()
	s := startDev(t)
	ctx := servicetest.Ctx(t)
	root := browser.New(t)
	artistTab, _ := browser.NewIsolated(t, root)
	listenerTab, _ := browser.NewIsolated(t, root)
	financeTab, _ := browser.NewIsolated(t, root)

	// 1. An artist and a listener register in the browser; the artist role
	// is granted with `fanfare roles grant`.
	registerInBrowser(t, s, artistTab, "Ava Artist", "ava@fanfare.test")
	registerInBrowser(t, s, listenerTab, "Leo Listener", "leo@fanfare.test")
	if err := runRoles(ctx, []string{"grant", "ava@fanfare.test", "artist", "--kratos-admin-url", s.kratosAdmn}); err != nil {
		t.Fatal(err)
	}
	admin := kratos.NewAdmin(s.kratosAdmn)
	avaID, _, err := admin.IdentityByEmail(ctx, "ava@fanfare.test")
	if err != nil {
		t.Fatal(err)
	}
	leoID, _, err := admin.IdentityByEmail(ctx, "leo@fanfare.test")
	if err != nil {
		t.Fatal(err)
	}
	login := func(email string) person {
		tok, err := kratos.LoginNative(ctx, s.kratosPublic, email, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		return person{email: email, token: tok}
	}
	ava, leo := login("ava@fanfare.test"), login("leo@fanfare.test")
	ava.id, leo.id = avaID, leoID
	fin := s.register(t, "Fin", "finance")
	loginInBrowser(t, s, financeTab, fin.email)

	// 2. The artist registers a song (API, with her session).
	reg, err := songsv1connect.NewSongsServiceClient(http.DefaultClient, s.url, ava.session()).RegisterSong(ctx,
		connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: "ava-song-1", Description: song("Live Wire", ava.id), DownloadLocation: "https://cdn.example/live-wire"}))
	if err != nil {
		t.Fatalf("register song: %v", err)
	}
	songID := reg.Msg.SongId

	// The artist opens her dashboard and keeps it open.
	browser.Do(t, artistTab, chromedp.Navigate(s.url+"/artist"), chromedp.WaitVisible("#dashboard"))
	browser.Run(t, artistTab, chromedp.Poll[bool](`document.getElementById("live").textContent === "connected" || document.getElementById("live").textContent.startsWith("updated")`))
	loadedAt := browser.Run(t, artistTab, chromedp.Evaluate[float64](`window.__loadedAt`))
	browser.Run(t, artistTab, chromedp.Poll[bool](fmt.Sprintf(`!!document.querySelector('tr[data-song=%q]')`, songID)))
	if tips := browser.Run(t, artistTab, chromedp.Text("#tips")); tips != "0.00" {
		t.Fatalf("dashboard tips before any tip: %q", tips)
	}
	browser.Screenshot(t, artistTab, "1 dashboard before")

	// 3. The listener deposits; finance confirms it on the finance page.
	dep, err := s.accounts(leo).RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "leo-dep-1",
		AccountId: "wallet:" + leo.id + ":USD", Amount: "20.00"}))
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#deposits tr[data-id=%q]`, dep.Msg.DepositId)
	servicetest.Eventually(t, "the deposit on the finance page", func() error {
		browser.Do(t, financeTab, chromedp.Navigate(s.url+"/finance"), chromedp.WaitVisible("#deposits"))
		if !browser.Run(t, financeTab, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector('%s')`, row))) {
			return fmt.Errorf("deposit %s not listed yet", dep.Msg.DepositId)
		}
		return nil
	})
	browser.Screenshot(t, financeTab, "2 finance deposits to confirm")
	browser.Do(t, financeTab,
		chromedp.SetValue(row+` input[name="rail_reference"]`, "BANK-REF-1"),
		chromedp.Click(row+` button[type="submit"]`),
		chromedp.WaitVisible("#flash"),
	)
	if flash := browser.Run(t, financeTab, chromedp.Text("#flash")); flash != "Deposit "+dep.Msg.DepositId+" confirmed" {
		t.Fatalf("finance page after confirming: %q", flash)
	}

	// The listener plays the song through the heartbeat API: 2 s of a 4 s
	// song, at wall-clock pace (the service judges time itself).
	plays := playsv1connect.NewPlaysServiceClient(http.DefaultClient, s.url, leo.session())
	var session string
	servicetest.Eventually(t, "the plays service knows the song", func() error {
		r, err := plays.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: songID, NodeId: "browser-test-node"}))
		if err != nil {
			return err
		}
		session = r.Msg.SessionId
		return nil
	})
	for seq, r := range [][2]uint64{{0, 1500}, {1500, 3000}} {
		time.Sleep(1600 * time.Millisecond)
		res, err := plays.RecordHeartbeats(ctx, connect.NewRequest(&playsv1.RecordHeartbeatsRequest{Heartbeats: []*playsv1.Heartbeat{{SessionId: session, Seq: uint64(seq + 1), FromMs: r[0], ToMs: r[1]}}}))
		if err != nil || !res.Msg.Results[0].Accepted {
			t.Fatalf("heartbeat %d: %v %v", seq+1, res, err)
		}
	}
	playRow := fmt.Sprintf(`tr[data-song=%q]`, songID)
	playAt := time.Now()
	browser.Run(t, artistTab, chromedp.Poll[bool](fmt.Sprintf(`(() => { const r = document.querySelector('%s'); return !!r && (r.cells[1].textContent.trim() === "1" || r.cells[2].textContent.trim() === "1"); })()`, playRow)))
	t.Logf("the play showed on the open dashboard %s after the heartbeat that counted it", time.Since(playAt).Round(time.Millisecond))

	// ...and tips 1.00 on the wallet page.
	loginCheck := browser.Run(t, listenerTab, chromedp.Evaluate[string](`document.title`))
	browser.Do(t, listenerTab, chromedp.Navigate(s.url+"/wallet"), chromedp.WaitVisible("#balance-USD"))
	if bal := browser.Run(t, listenerTab, chromedp.Text("#balance-USD b")); bal != "25.00" {
		t.Fatalf("wallet page balance %q (after %q), want 25.00 (5.00 welcome + 20.00 deposit)", bal, loginCheck)
	}
	browser.Do(t, listenerTab,
		chromedp.SetValue(`#tip input[name="song_id"]`, songID),
		chromedp.SetValue(`#tip input[name="amount"]`, "1.00"),
	)
	browser.Screenshot(t, listenerTab, "3 wallet before tip")
	tipAt := time.Now()
	browser.Do(t, listenerTab, chromedp.Click(`#tip button[type="submit"]`), chromedp.WaitVisible("#flash"))
	if flash := browser.Run(t, listenerTab, chromedp.Text("#flash")); !strings.HasSuffix(flash, ": completed") {
		t.Fatalf("wallet page after tipping: %q", flash)
	}
	if bal := browser.Run(t, listenerTab, chromedp.Text("#balance-USD b")); bal != "24.00" {
		t.Fatalf("wallet balance after the tip %q, want 24.00", bal)
	}
	browser.Screenshot(t, listenerTab, "4 wallet after tip")

	// 4. The open dashboard shows the tip without a reload.
	browser.Run(t, artistTab, chromedp.Poll[bool](`document.getElementById("tips").textContent === "1.00"`))
	t.Logf("the tip showed on the open dashboard %s after the click (ledger commit included)", time.Since(tipAt).Round(time.Millisecond))
	if again := browser.Run(t, artistTab, chromedp.Evaluate[float64](`window.__loadedAt`)); again != loadedAt {
		t.Fatalf("the dashboard reloaded (loaded at %v, now %v)", loadedAt, again)
	}
	if bars := browser.Run(t, artistTab, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect.bar").length`)); bars == 0 {
		t.Fatal("no earnings chart bars after the tip")
	}
	browser.Screenshot(t, artistTab, "5 dashboard after tip")

	// Finance downloads the settlement export and runs an audit replay.
	today := time.Now().UTC().Format(time.DateOnly)
	csv := browser.Run(t, financeTab, chromedp.Evaluate[string](fmt.Sprintf(`fetch("/finance/export?from=%s&to=%s&format=csv").then(r => r.ok ? r.text() : "HTTP " + r.status)`, today, today), chromedp.EvalAwaitPromise))
	if !strings.Contains(csv, ava.id) || !strings.Contains(csv, "1.00") {
		t.Fatalf("settlement export lacks the artist's tip:\n%s", csv)
	}
	browser.Do(t, financeTab, chromedp.Navigate(s.url+"/audit"), chromedp.Click("#run-audit"), chromedp.WaitVisible("#audit-hash"))
	hash := browser.Run(t, financeTab, chromedp.Text("#audit-hash"))
	if len(hash) != 64 {
		t.Fatalf("audit page hash %q", hash)
	}
	browser.Screenshot(t, financeTab, "6 audit")
	t.Logf("browser test took %s (audit hash %s)", time.Since(began).Round(time.Millisecond), hash)
}
