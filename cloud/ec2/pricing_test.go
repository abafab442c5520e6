package ec2

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"

	"zcloud/cloud/ec2/ec2types"
)

func TestInstancePrice(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	table := PriceTable{"t3.micro": 0.0104}
	p, err := e.c.InstancePrice(ctx, ec2types.Instance{Type: "t3.micro", Market: ec2types.OnDemand}, table, "")
	if err != nil || p.USDPerHour != 0.0104 || p.Source != "on-demand-list" {
		t.Fatalf("on-demand: %+v %v", p, err)
	}
	if got := p.Cost(90 * time.Minute); got < 0.0155 || got > 0.0157 {
		t.Fatalf("cost of 1.5 h: %v", got)
	}
	// moto serves a spot price history (a fixed price per type and AZ).
	p, err = e.c.InstancePrice(ctx, ec2types.Instance{Type: "t3.micro", Market: ec2types.Spot, AvailabilityZone: e.az}, table, "0.05")
	if err != nil || p.Source != "spot-history" || p.USDPerHour <= 0 || p.USDPerHour > 0.05 {
		t.Fatalf("spot: %+v %v", p, err)
	}
	if _, err := e.c.InstancePrice(ctx, ec2types.Instance{Type: "x9.huge", Market: ec2types.OnDemand}, table, ""); !IsPermanent(err) {
		t.Fatalf("unknown type: %v", err)
	}
}

// noSpotHistory wraps moto and answers DescribeSpotPriceHistory with nothing,
// as EC2 does for a type with no spot market in the AZ.
type noSpotHistory struct{ API }

func (noSpotHistory) DescribeSpotPriceHistory(context.Context, *sdk.DescribeSpotPriceHistoryInput, ...func(*sdk.Options)) (*sdk.DescribeSpotPriceHistoryOutput, error) {
	return &sdk.DescribeSpotPriceHistoryOutput{}, nil
}

func TestInstancePriceFallsBackToSpotMax(t *testing.T) {
	e := newMotoEnv(t)
	c := New(noSpotHistory{e.api}, fastOptions())
	p, err := c.InstancePrice(testCtx(t), ec2types.Instance{Type: "t3.micro", Market: ec2types.Spot}, nil, "0.05")
	if err != nil || p.USDPerHour != 0.05 || p.Source != "spot-max" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestFormatUSD(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "$0.00"},
		{0.107, "$0.1070"},
		{0.0104, "$0.0104"},
		{0.01, "$0.0100"},
		{1.23456, "$1.2346"},
		{12, "$12.0000"},
		{0.0035, "$0.0035"},
		{0.005, "$0.0050"},
		{0.00999999, "$0.0100"},
		{0.00001, "$0.00001"},
		{0.000016, "$0.000016"},
		{0.0000123456, "$0.0000123"},
		{4.1e-8, "$0.000000041"},
		{2e-20, "$2e-20"},
		{-0.00001, "-$0.00001"},
	} {
		if got := FormatUSD(c.v); got != c.want {
			t.Errorf("FormatUSD(%v) = %s, want %s", c.v, got, c.want)
		}
	}
	// Never "$0.0000" for a non-zero amount, however small.
	for v := 0.5; v > 1e-30; v /= 3 {
		if got := FormatUSD(v); strings.Trim(got, "$0.") == "" {
			t.Errorf("FormatUSD(%g) = %s", v, got)
		}
	}
}

func TestSpotPriceFromMotoPrintsItsDigits(t *testing.T) {
	e := newMotoEnv(t)
	p, err := e.c.InstancePrice(testCtx(t), ec2types.Instance{Type: "t3.micro", Market: ec2types.Spot, AvailabilityZone: e.az}, nil, "0.05")
	if err != nil {
		t.Fatal(err)
	}
	// moto's spot history says $0.00001/h: four decimals printed $0.0000/h.
	if got := p.String(); got != "$0.00001/h (spot-history)" {
		t.Errorf("spot price %v prints as %q", p.USDPerHour, got)
	}
	if got := (Price{USDPerHour: 0.107, Source: "on-demand-list"}).String(); got != "$0.1070/h (on-demand-list)" {
		t.Errorf("on-demand price prints as %q", got)
	}
}

func TestFormatHours(t *testing.T) {
	for _, c := range []struct {
		h    float64
		want string
	}{
		{0, "0.000"},
		{0.5, "0.500"},
		{0.12, "0.120"},
		{1.5, "1.500"},
		{12.3456, "12.346"},
		{0.0123456, "0.0123"},
		{2.846 / 3600, "0.000791"},
		{1.2 / 3600, "0.000333"},
		{0.001, "0.001"},
		{1e-25, "1e-25"},
	} {
		if got := FormatHours(c.h); got != c.want {
			t.Errorf("FormatHours(%v) = %s, want %s", c.h, got, c.want)
		}
	}
}

// costTerm is "H h × $P/h (source) = $A".
var costTerm = regexp.MustCompile(`^([0-9.e+-]+) h × \$([0-9.e+-]+)/h \(([a-z-]+)\) = \$([0-9.e+-]+)$`)

// multipliesOut checks that a cost term's hours as printed times its price
// as printed come to its amount as printed, and that hours and amount are
// the real ones (to the digits shown).
func multipliesOut(t *testing.T, term string, hours float64, p Price) {
	t.Helper()
	m := costTerm.FindStringSubmatch(term)
	if m == nil {
		t.Fatalf("%q is not a cost term", term)
	}
	h, _ := strconv.ParseFloat(m[1], 64)
	price, _ := strconv.ParseFloat(m[2], 64)
	if got := FormatUSD(h * price); got != "$"+m[4] {
		t.Errorf("%q does not multiply out: %s h × $%s/h = %s", term, m[1], m[2], got)
	}
	if want := FormatUSD(p.Cost(time.Duration(hours * float64(time.Hour)))); "$"+m[4] != want {
		t.Errorf("%q: amount is not the cost %s", term, want)
	}
	if math.Abs(h-hours) > 0.0005 && math.Abs(h-hours) > 0.005*hours {
		t.Errorf("%q: hours are not %v", term, hours)
	}
}

func TestCostTermMultipliesOut(t *testing.T) {
	for _, c := range []struct {
		seconds float64
		usd     float64
		want    string
	}{
		// "0.001 h × $0.0104/h = $0.00000822" did not multiply out.
		{2.846, 0.0104, "0.0007906 h × $0.0104/h (on-demand-list) = $0.00000822"},
		{1.2, 0.0104, "0.0003333 h × $0.0104/h (on-demand-list) = $0.00000347"},
		{432, 0.00001, "0.120 h × $0.00001/h (on-demand-list) = $0.0000012"},
		{1800, 0.0104, "0.500 h × $0.0104/h (on-demand-list) = $0.0052"},
		{0.292 * 3600, 0.107, "0.292 h × $0.1070/h (on-demand-list) = $0.0312"},
		{0.1204 * 3600, 0.107, "0.1204 h × $0.1070/h (on-demand-list) = $0.0129"},
		{0, 0.107, "0.000 h × $0.1070/h (on-demand-list) = $0.00"},
	} {
		p := Price{USDPerHour: c.usd, Source: "on-demand-list"}
		h := c.seconds / 3600
		got := p.CostTerm(h)
		if got != c.want {
			t.Errorf("CostTerm(%v s at %v) = %q, want %q", c.seconds, c.usd, got, c.want)
		}
		multipliesOut(t, got, h, p)
	}
	// Every use, short or long, at cheap and dear prices.
	for _, usd := range []float64{0.00001, 0.0035, 0.0104, 0.0416, 0.107, 1.234, 3.06, 32.77} {
		p := Price{USDPerHour: usd, Source: "spot-history"}
		for s := 0.5; s < 200*3600; s = s*1.07 + 0.37 {
			multipliesOut(t, p.CostTerm(s/3600), s/3600, p)
		}
	}
}
