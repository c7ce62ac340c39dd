package songview

import (
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// Percent reads "33.3334" (at most 4 decimals) as parts per million.
var Percent = money.Asset{Code: "PCT", Scale: 4}

// ParseSplits reads the API's percentage splits (the songs API's Split,
// which other APIs reuse) as ppm splits; domain.ValidateSplits checks the
// list. Errors: InvalidInput, naming the split.
func ParseSplits(in []*songsv1.Split) ([]*eventsv1.Split, error) {
	out := make([]*eventsv1.Split, 0, len(in))
	for i, s := range in {
		share, err := money.Parse(Percent, s.Percent, money.Positive)
		if err != nil {
			return nil, apperr.New(apperr.InvalidInput, "split %d (%s): percent %q: must be a positive decimal with at most 4 decimals", i+1, s.PayeeId, clip(s.Percent))
		}
		if share.Units() > domain.PPM { // scale 4 percent units are ppm
			return nil, apperr.New(apperr.InvalidInput, "split %d (%s): %s%% is more than 100%%", i+1, s.PayeeId, s.Percent)
		}
		out = append(out, &eventsv1.Split{PayeeId: s.PayeeId, SharePpm: uint32(share.Units())})
	}
	return out, nil
}

// FormatSplits is ParseSplits' inverse, for answers.
func FormatSplits(in []*eventsv1.Split) []*songsv1.Split {
	out := make([]*songsv1.Split, 0, len(in))
	for _, s := range in {
		out = append(out, &songsv1.Split{PayeeId: s.PayeeId, Percent: money.FormatUnits(int64(s.SharePpm), 4)})
	}
	return out
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
