package money_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/fanfare/fanfare/internal/platform/money"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		asset money.Asset
		in    string
		units int64
		text  string
	}{
		{money.USD, "5.00", 500, "5.00"},
		{money.USD, "5", 500, "5.00"},
		{money.USD, "5.5", 550, "5.50"},
		{money.USD, "0.01", 1, "0.01"},
		{money.USD, "+0.01", 1, "0.01"},
		{money.USD, "005.000", 500, "5.00"},
		{money.USD, "1234567.89", 123456789, "1234567.89"},
		{money.FAN, "12.34567891", 1234567891, "12.34567891"},
		{money.FAN, "0.00000001", 1, "0.00000001"},
		{money.FAN, "2000000000", 2_000_000_000 * 100_000_000, "2000000000.00000000"},
		{money.USD, "92233720368547758.07", math.MaxInt64, "92233720368547758.07"},
		{money.Asset{Code: "PTS", Scale: 0}, "42", 42, "42"},
		{money.Asset{Code: "WEI", Scale: 18}, "1.000000000000000001", 1_000_000_000_000_000_001, "1.000000000000000001"},
	}
	for _, c := range cases {
		t.Run(c.asset.Code+"/"+c.in, func(t *testing.T) {
			got, err := money.Parse(c.asset, c.in, money.Positive)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got.Units() != c.units || got.Asset() != c.asset {
				t.Fatalf("Parse(%q) = %d %s, want %d %s", c.in, got.Units(), got.Asset(), c.units, c.asset)
			}
			if got.Text() != c.text {
				t.Fatalf("Text() = %q, want %q", got.Text(), c.text)
			}
			back, err := money.Parse(c.asset, got.Text(), money.Positive)
			if err != nil || back != got {
				t.Fatalf("round trip of %q: %v, %v", got.Text(), back, err)
			}
		})
	}
}

func TestParseSignBounds(t *testing.T) {
	cases := []struct {
		in    string
		bound money.Bound
		units int64
		err   error
	}{
		{"0", money.Positive, 0, money.ErrZero},
		{"0.00", money.Positive, 0, money.ErrZero},
		{"-0", money.Positive, 0, money.ErrZero},
		{"0", money.NonNegative, 0, nil},
		{"-0.00", money.NonNegative, 0, nil},
		{"-1", money.Positive, 0, money.ErrNegative},
		{"-1", money.NonNegative, 0, money.ErrNegative},
		{"-1.25", money.AnySign, -125, nil},
		{"0", money.AnySign, 0, nil},
	}
	for _, c := range cases {
		got, err := money.Parse(money.USD, c.in, c.bound)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Parse(%q, %d) error = %v, want %v", c.in, c.bound, err, c.err)
			}
			continue
		}
		if err != nil || got.Units() != c.units {
			t.Errorf("Parse(%q, %d) = %d, %v; want %d", c.in, c.bound, got.Units(), err, c.units)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		asset money.Asset
		in    string
		err   error
		msg   string
	}{
		{money.USD, "", money.ErrEmpty, "money: empty USD amount"},
		{money.USD, "abc", money.ErrSyntax, `money: "abc" is not a number (want digits with an optional sign and decimal point, e.g. "5.00")`},
		{money.USD, "1.", money.ErrSyntax, ""},
		{money.USD, ".5", money.ErrSyntax, ""},
		{money.USD, "-", money.ErrSyntax, ""},
		{money.USD, "+-1", money.ErrSyntax, ""},
		{money.USD, "1e3", money.ErrSyntax, ""},
		{money.USD, " 1", money.ErrSyntax, ""},
		{money.USD, "1 ", money.ErrSyntax, ""},
		{money.USD, "1,000.00", money.ErrSyntax, ""},
		{money.USD, "1_000", money.ErrSyntax, ""},
		{money.USD, "١", money.ErrSyntax, ""}, // Arabic-Indic digit one
		{money.USD, "NaN", money.ErrSyntax, ""},
		{money.USD, "0x10", money.ErrSyntax, ""},
		{money.USD, "0.001", money.ErrTooManyDecimals, `money: USD allows 2 decimals, got "0.001"`},
		{money.USD, "5.0010", money.ErrTooManyDecimals, ""},
		{money.FAN, "1.000000001", money.ErrTooManyDecimals, `money: FAN allows 8 decimals, got "1.000000001"`},
		{money.USD, "92233720368547758.08", money.ErrOverflow, `money: "92233720368547758.08" is out of range for USD (at most 92233720368547758.07)`},
		{money.USD, "-92233720368547758.08", money.ErrOverflow, ""},
		{money.USD, "99999999999999999999999999", money.ErrOverflow, ""},
		{money.FAN, "100000000000", money.ErrOverflow, ""},
		{money.Asset{Code: "usd", Scale: 2}, "1", money.ErrInvalidAsset, ""},
		{money.Asset{Code: "BIG", Scale: 19}, "1", money.ErrInvalidAsset, ""},
	}
	for _, c := range cases {
		_, err := money.Parse(c.asset, c.in, money.Positive)
		if !errors.Is(err, c.err) {
			t.Errorf("Parse(%s, %q) error = %v, want %v", c.asset, c.in, err, c.err)
			continue
		}
		if c.msg != "" && err.Error() != c.msg {
			t.Errorf("Parse(%s, %q) message = %q, want %q", c.asset, c.in, err.Error(), c.msg)
		}
	}
}

func TestParseLongInputIsClipped(t *testing.T) {
	in := strings.Repeat("9", 10_000)
	_, err := money.Parse(money.USD, in, money.Positive)
	if !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("error = %v, want overflow", err)
	}
	if len(err.Error()) > 200 {
		t.Fatalf("message is %d bytes long; the input should be clipped", len(err.Error()))
	}
}

func TestAssetsTable(t *testing.T) {
	def := money.DefaultAssets()
	if got := def.Codes(); strings.Join(got, ",") != "FAN,USD" {
		t.Fatalf("default codes = %v", got)
	}
	usd, err := def.Lookup("USD")
	if err != nil || usd != (money.Asset{Code: "USD", Scale: 2}) {
		t.Fatalf("Lookup(USD) = %v, %v", usd, err)
	}
	fan, err := def.Lookup("FAN")
	if err != nil || fan.Scale != 8 {
		t.Fatalf("Lookup(FAN) = %v, %v", fan, err)
	}
	_, err = def.Lookup("EUR")
	if !errors.Is(err, money.ErrUnknownAsset) || err.Error() != `money: unknown asset "EUR" (known: FAN, USD)` {
		t.Fatalf("Lookup(EUR) error = %v", err)
	}
	if _, err := def.Parse("EUR", "1.00", money.Positive); !errors.Is(err, money.ErrUnknownAsset) {
		t.Fatalf("Parse in EUR error = %v", err)
	}
	m, err := def.Parse("USD", "5.00", money.Positive)
	if err != nil || m.Units() != 500 {
		t.Fatalf("Parse(USD 5.00) = %v, %v", m, err)
	}

	// A policy can pass its own table: here USD gains a third decimal.
	custom, err := money.NewAssets(money.Asset{Code: "USD", Scale: 3}, money.FAN, money.Asset{Code: "EUR", Scale: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err = custom.Parse("USD", "0.001", money.Positive)
	if err != nil || m.Units() != 1 || m.Text() != "0.001" {
		t.Fatalf("custom Parse(USD 0.001) = %v, %v", m, err)
	}
	if custom.Len() != 3 || strings.Join(custom.Codes(), ",") != "EUR,FAN,USD" {
		t.Fatalf("custom codes = %v", custom.Codes())
	}
	// The default table is unaffected.
	if _, err := money.DefaultAssets().Parse("USD", "0.001", money.Positive); !errors.Is(err, money.ErrTooManyDecimals) {
		t.Fatalf("default table changed: %v", err)
	}
	if _, err := money.NewAssets(money.USD, money.USD); !errors.Is(err, money.ErrInvalidAsset) {
		t.Fatalf("duplicate asset error = %v", err)
	}
	if _, err := money.NewAssets(money.Asset{Code: "U", Scale: 2}); !errors.Is(err, money.ErrInvalidAsset) {
		t.Fatalf("short code error = %v", err)
	}
}

func TestArithmetic(t *testing.T) {
	a := money.MustParse(money.USD, "5.00")
	b := money.MustParse(money.USD, "0.01")
	sum, err := a.Add(b)
	if err != nil || sum.Text() != "5.01" || sum.String() != "5.01 USD" {
		t.Fatalf("5.00 + 0.01 = %v, %v", sum, err)
	}
	diff, err := b.Sub(a)
	if err != nil || diff.Text() != "-4.99" || diff.Sign() != -1 || diff.Neg().Text() != "4.99" {
		t.Fatalf("0.01 - 5.00 = %v, %v", diff, err)
	}
	if _, err := a.Add(money.MustParse(money.FAN, "1")); !errors.Is(err, money.ErrAssetMismatch) {
		t.Fatalf("USD + FAN error = %v", err)
	}
	max := money.New(money.USD, math.MaxInt64)
	if _, err := max.Add(b); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("max + 0.01 error = %v", err)
	}
	if _, err := max.Neg().Sub(b); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("-max - 0.01 error = %v", err)
	}
	if got := money.New(money.USD, math.MinInt64).Units(); got != -math.MaxInt64 {
		t.Fatalf("New clamps MinInt64 to %d", got)
	}
	if !money.New(money.USD, 0).IsZero() {
		t.Fatal("zero is not zero")
	}
}

func TestFormatUnits(t *testing.T) {
	cases := []struct {
		units int64
		scale uint8
		want  string
	}{
		{0, 2, "0.00"}, {1, 2, "0.01"}, {-1, 2, "-0.01"}, {100, 2, "1.00"},
		{-12345, 2, "-123.45"}, {1, 8, "0.00000001"}, {5, 0, "5"}, {-5, 0, "-5"},
		{math.MinInt64, 2, "-92233720368547758.08"},
	}
	for _, c := range cases {
		if got := money.FormatUnits(c.units, c.scale); got != c.want {
			t.Errorf("FormatUnits(%d, %d) = %q, want %q", c.units, c.scale, got, c.want)
		}
	}
}

func TestDecimalEdges(t *testing.T) {
	d := decimal.RequireFromString("12.34567891")
	m, err := money.FromDecimal(money.FAN, d, money.Positive)
	if err != nil || m.Units() != 1234567891 {
		t.Fatalf("FromDecimal = %v, %v", m, err)
	}
	if !m.Decimal().Equal(d) {
		t.Fatalf("Decimal() = %s, want %s", m.Decimal(), d)
	}
	// The burn at S = 1.5e9 is 1000 × 0.5³ = 125 FAN exactly.
	x := decimal.RequireFromString("0.5")
	burn := decimal.NewFromInt(1000).Mul(x.Pow(decimal.NewFromInt(3))).RoundBank(8)
	m, err = money.FromDecimal(money.FAN, burn, money.Positive)
	if err != nil || m.Text() != "125.00000000" {
		t.Fatalf("burn = %v, %v", m, err)
	}
	if _, err := money.FromDecimal(money.USD, decimal.RequireFromString("0.001"), money.Positive); !errors.Is(err, money.ErrTooManyDecimals) {
		t.Fatalf("0.001 USD error = %v", err)
	}
	if _, err := money.FromDecimal(money.USD, decimal.RequireFromString("1e30"), money.Positive); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("1e30 USD error = %v", err)
	}
	if _, err := money.FromDecimal(money.USD, decimal.Zero, money.Positive); !errors.Is(err, money.ErrZero) {
		t.Fatalf("zero error = %v", err)
	}
	if _, err := money.FromDecimal(money.USD, decimal.RequireFromString("-1"), money.NonNegative); !errors.Is(err, money.ErrNegative) {
		t.Fatalf("negative error = %v", err)
	}
	// Trailing zeros from decimal arithmetic are fine.
	m, err = money.FromDecimal(money.USD, decimal.RequireFromString("5.000000"), money.Positive)
	if err != nil || m.Units() != 500 {
		t.Fatalf("5.000000 = %v, %v", m, err)
	}
}
