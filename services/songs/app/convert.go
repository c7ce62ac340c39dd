package app

import (
	"encoding/hex"
	"fmt"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
)

func bad(format string, args ...any) error { return apperr.New(apperr.InvalidInput, format, args...) }

// toEvent converts an API description into a domain one for song id and
// artist and validates it. Errors are InvalidInput and name the field.
func (a *App) toEvent(d *songsv1.Description, songID, artistID string) (*eventsv1.SongDescription, error) {
	if d == nil {
		return nil, bad("description is required")
	}
	out := &eventsv1.SongDescription{
		SongId: songID, ArtistId: artistID, Title: d.Title, Artists: d.Artists, Album: d.Album, Track: d.Track,
		Genre: d.Genre, Year: d.Year, DurationMs: d.DurationMs, LinerNotes: d.LinerNotes, Format: d.Format,
		CopyrightHolder: d.CopyrightHolder, MetadataUrl: d.MetadataUrl, MessageOfTheDay: d.MessageOfTheDay,
		PaymentProtocols: d.PaymentProtocols,
	}
	hash, err := hex.DecodeString(d.ContentHash)
	if err != nil || len(hash) != 32 {
		return nil, bad("content_hash must be 64 hex digits (SHA-256), got %q", clip(d.ContentHash))
	}
	out.ContentHash = hash
	if d.Fingerprint == "" {
		return nil, bad("fingerprint is required (the output of fpcalc or fpcalc -raw)")
	}
	if out.Fingerprint, err = domain.ParseFingerprint(d.Fingerprint); err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err)
	}
	splits, err := songview.ParseSplits(d.Splits)
	if err != nil {
		return nil, err
	}
	out.Splits = splits
	var priceAsset money.Asset
	if d.Price != "" {
		code := d.PriceAsset
		if code == "" {
			code = "USD"
		}
		price, err := a.Assets.Parse(code, d.Price, money.Positive)
		if err != nil {
			return nil, bad("price: %v", err)
		}
		priceAsset = price.Asset()
		out.Price = &eventsv1.Money{Asset: code, Units: price.Units()}
	} else if d.PriceAsset != "" {
		return nil, bad("price_asset %q without a price", d.PriceAsset)
	}
	if out.DistributorPolicy, err = toPolicy(d.DistributorPolicy, priceAsset); err != nil {
		return nil, err
	}
	if err := domain.ValidateDescription(out); err != nil {
		return nil, err
	}
	return out, nil
}

func toPolicy(p *songsv1.DistributorPolicy, asset money.Asset) (*eventsv1.DistributorPolicy, error) {
	if p == nil || (p.Mode == "" && p.Payer == "" && len(p.Fixed) == 0 && len(p.Percent) == 0) {
		return nil, nil
	}
	out := &eventsv1.DistributorPolicy{}
	switch p.Mode {
	case "none", "":
		out.Mode = eventsv1.DistributorPolicy_MODE_NONE
	case "fixed":
		out.Mode = eventsv1.DistributorPolicy_MODE_FIXED
	case "percent":
		out.Mode = eventsv1.DistributorPolicy_MODE_PERCENT
	default:
		return nil, bad("distributor_policy.mode %q: want none, fixed or percent", clip(p.Mode))
	}
	switch p.Payer {
	case "holder", "":
		out.Payer = eventsv1.DistributorPolicy_PAYER_HOLDER
	case "purchaser":
		out.Payer = eventsv1.DistributorPolicy_PAYER_PURCHASER
	default:
		return nil, bad("distributor_policy.payer %q: want holder or purchaser", clip(p.Payer))
	}
	if out.Mode == eventsv1.DistributorPolicy_MODE_NONE {
		out.Payer = eventsv1.DistributorPolicy_PAYER_UNSPECIFIED
	}
	for i, f := range p.Fixed {
		if asset.Code == "" {
			return nil, bad("distributor_policy.fixed needs a price")
		}
		amt, err := money.Parse(asset, f, money.Positive)
		if err != nil {
			return nil, bad("distributor_policy.fixed[%d]: %v", i, err)
		}
		out.FixedUnits = append(out.FixedUnits, amt.Units())
	}
	for i, f := range p.Percent {
		share, err := money.Parse(songview.Percent, f, money.Positive)
		if err != nil {
			return nil, bad("distributor_policy.percent[%d] %q: must be a positive decimal with at most 4 decimals", i, clip(f))
		}
		out.PercentPpm = append(out.PercentPpm, uint32(min(share.Units(), domain.PPM+1)))
	}
	return out, nil
}

// fromEvent converts back for answers.
func fromEvent(d *eventsv1.SongDescription, assets money.Assets) *songsv1.Description {
	out := &songsv1.Description{
		Title: d.Title, Artists: d.Artists, Album: d.Album, Track: d.Track, Genre: d.Genre, Year: d.Year,
		DurationMs: d.DurationMs, LinerNotes: d.LinerNotes, Format: d.Format, ContentHash: hex.EncodeToString(d.ContentHash),
		Fingerprint: domain.CompressFingerprint(1, d.Fingerprint), CopyrightHolder: d.CopyrightHolder,
		MetadataUrl: d.MetadataUrl, MessageOfTheDay: d.MessageOfTheDay, PaymentProtocols: d.PaymentProtocols,
	}
	out.Splits = songview.FormatSplits(d.Splits)
	var scale uint8
	if d.Price != nil {
		if a, err := assets.Lookup(d.Price.Asset); err == nil {
			scale = a.Scale
		}
		out.Price, out.PriceAsset = money.FormatUnits(d.Price.Units, scale), d.Price.Asset
	}
	if p := d.DistributorPolicy; p != nil {
		out.DistributorPolicy = &songsv1.DistributorPolicy{
			Mode:  map[eventsv1.DistributorPolicy_Mode]string{eventsv1.DistributorPolicy_MODE_NONE: "none", eventsv1.DistributorPolicy_MODE_FIXED: "fixed", eventsv1.DistributorPolicy_MODE_PERCENT: "percent"}[p.Mode],
			Payer: map[eventsv1.DistributorPolicy_Payer]string{eventsv1.DistributorPolicy_PAYER_HOLDER: "holder", eventsv1.DistributorPolicy_PAYER_PURCHASER: "purchaser"}[p.Payer],
		}
		for _, u := range p.FixedUnits {
			out.DistributorPolicy.Fixed = append(out.DistributorPolicy.Fixed, money.FormatUnits(u, scale))
		}
		for _, u := range p.PercentPpm {
			out.DistributorPolicy.Percent = append(out.DistributorPolicy.Percent, money.FormatUnits(int64(u), 4))
		}
	}
	return out
}

// clip shortens echoed input in error messages.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func notFound(id string) error {
	return apperr.Wrap(apperr.NotFound, fmt.Errorf("%w: %s", domain.ErrNotFound, id))
}
