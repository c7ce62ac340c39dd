package scenario

import (
	"fmt"
	"strings"
)

// format writes minor units of asset as the APIs' decimal text: "5.00",
// "-0.05", "1.00000000".
func format(units int64, asset string) string {
	scale := int(scaleOf(asset))
	sign := ""
	u := uint64(units)
	if units < 0 {
		sign, u = "-", uint64(-units)
	}
	pow := uint64(1)
	for range scale {
		pow *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, u/pow, scale, u%pow)
}

// parse reads the APIs' decimal text of asset into minor units, exactly:
// at most the asset's scale of decimals, no exponent, an optional sign.
func parse(s, asset string) (int64, error) {
	scale := int(scaleOf(asset))
	orig := s
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > scale || len(whole) > 18-scale {
		return 0, fmt.Errorf("%q is not a %s amount", orig, asset)
	}
	var v int64
	for _, c := range whole + frac + strings.Repeat("0", scale-len(frac)) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a %s amount", orig, asset)
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}
