package ec2

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestInstancePrice(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	table := PriceTable{"t3.micro": 0.0104}
	p, err := e.c.InstancePrice(ctx, Instance{Type: "t3.micro", Market: OnDemand}, table, "")
	if err != nil || p.USDPerHour != 0.0104 || p.Source != "on-demand-list" {
		t.Fatalf("on-demand: %+v %v", p, err)
	}
	if got := p.Cost(90 * time.Minute); got < 0.0155 || got > 0.0157 {
		t.Fatalf("cost of 1.5 h: %v", got)
	}
	// moto serves a spot price history (a fixed price per type and AZ).
	p, err = e.c.InstancePrice(ctx, Instance{Type: "t3.micro", Market: Spot, AvailabilityZone: e.az}, table, "0.05")
	if err != nil || p.Source != "spot-history" || p.USDPerHour <= 0 || p.USDPerHour > 0.05 {
		t.Fatalf("spot: %+v %v", p, err)
	}
	if _, err := e.c.InstancePrice(ctx, Instance{Type: "x9.huge", Market: OnDemand}, table, ""); !IsPermanent(err) {
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
	p, err := c.InstancePrice(testCtx(t), Instance{Type: "t3.micro", Market: Spot}, nil, "0.05")
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
	p, err := e.c.InstancePrice(testCtx(t), Instance{Type: "t3.micro", Market: Spot, AvailabilityZone: e.az}, nil, "0.05")
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
