package ec2

import (
	"context"
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
