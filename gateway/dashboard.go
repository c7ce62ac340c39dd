package gateway

import (
	"fmt"
	"html/template"
	"strings"

	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	"github.com/shopspring/decimal"
)

// dashboardView is the artist dashboard as the page shows it.
type dashboardView struct {
	Version                                                uint64
	FanEarned, FanEscrowed, Tips, Purchases, Subscriptions string
	Songs                                                  []songView
	Charts                                                 []chartView
	Campaigns                                              []campaignView
}

type songView struct {
	ID, Title           string
	Discovery, Standard uint64
}

type campaignView struct{ ID, Status, Pledged, Goal string }

type chartView struct {
	Asset string
	SVG   template.HTML
}

func viewDashboard(d *reportsv1.ArtistDashboard) dashboardView {
	v := dashboardView{Version: d.GetVersion(), FanEarned: d.GetFanEarned().GetValue(), FanEscrowed: d.GetFanEscrowed().GetValue(),
		Tips: d.GetTips().GetValue(), Purchases: d.GetPurchases().GetValue(), Subscriptions: d.GetSubscriptions().GetValue()}
	for _, s := range d.GetSongs() {
		title := s.Title
		if title == "" {
			title = s.SongId
		}
		v.Songs = append(v.Songs, songView{ID: s.SongId, Title: title, Discovery: s.DiscoveryPlays, Standard: s.StandardPlays})
	}
	for _, c := range d.GetCampaigns() {
		v.Campaigns = append(v.Campaigns, campaignView{ID: c.CampaignId, Status: c.Status,
			Pledged: c.GetPledged().GetValue() + " " + c.GetPledged().GetAsset(), Goal: c.GetGoal().GetValue() + " " + c.GetGoal().GetAsset()})
	}
	byAsset := map[string][]*reportsv1.DayEarnings{}
	var assets []string
	for _, e := range d.GetEarningsByDay() {
		a := e.GetAmount().GetAsset()
		if byAsset[a] == nil {
			assets = append(assets, a)
		}
		byAsset[a] = append(byAsset[a], e)
	}
	for _, a := range assets {
		v.Charts = append(v.Charts, chartView{Asset: a, SVG: earningsChart(a, byAsset[a])})
	}
	return v
}

// earningsChart draws one asset's earnings per day (oldest first) as an
// SVG bar chart, the last 30 days that had earnings. Bar heights are
// display geometry, computed in decimal from the exact amounts.
func earningsChart(asset string, days []*reportsv1.DayEarnings) template.HTML {
	if len(days) > 30 {
		days = days[len(days)-30:]
	}
	const width, height, top, bottom, left = 600, 180, 16, 28, 8
	plot := decimal.NewFromInt(height - top - bottom)
	amounts := make([]decimal.Decimal, len(days))
	highest, highestText := decimal.Zero, "0"
	for i, d := range days {
		amounts[i], _ = decimal.NewFromString(d.GetAmount().GetValue())
		if amounts[i].GreaterThan(highest) {
			highest, highestText = amounts[i], d.GetAmount().GetValue()
		}
	}
	slot := (width - 2*left) / max(len(days), 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s earnings per day" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`,
		template.HTMLEscapeString(asset), width, height, width, height)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, left, height-bottom, width-left, height-bottom)
	for i, d := range days {
		h := int64(0)
		if highest.IsPositive() {
			h = amounts[i].Mul(plot).Div(highest).Round(0).IntPart()
		}
		x := left + i*slot + slot/8
		fmt.Fprintf(&b, `<rect class="bar" data-day="%s" data-amount="%s" x="%d" y="%d" width="%d" height="%d" fill="#5b3fd1"><title>%s: %s %s</title></rect>`,
			d.GetDay(), template.HTMLEscapeString(d.GetAmount().GetValue()), x, height-bottom-int(h), max(slot*3/4, 1), h,
			d.GetDay(), template.HTMLEscapeString(d.GetAmount().GetValue()), template.HTMLEscapeString(asset))
		if i == 0 || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">%s</text>`, x, height-bottom+14, d.GetDay())
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">max %s %s</text></svg>`, left, top-4,
		template.HTMLEscapeString(highestText), template.HTMLEscapeString(asset))
	return template.HTML(b.String())
}
