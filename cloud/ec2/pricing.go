package ec2

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
)

// Price is an hourly instance price and where it came from.
type Price struct {
	USDPerHour float64 `json:"usd_per_hour"`
	// Source: "spot-history", "spot-max" or "on-demand-list".
	Source string `json:"source"`
}

// Cost is the price of running for d.
func (p Price) Cost(d time.Duration) float64 { return p.USDPerHour * d.Hours() }

// PriceTable is the on-demand list price per instance type (USD/hour), from
// config: the Pricing API needs other credentials and region, and a fixed
// table keeps the cost line reproducible.
type PriceTable map[string]float64

// InstancePrice is what inst costs per hour: for spot, the latest spot price
// in its AZ from DescribeSpotPriceHistory, else spotMax (the cap we agreed to
// pay), else the list price; for on-demand, the list price.
func (c *Client) InstancePrice(ctx context.Context, inst ec2types.Instance, table PriceTable, spotMax string) (Price, error) {
	if inst.Market == ec2types.Spot {
		p, err := c.SpotPrice(ctx, inst.Type, inst.AvailabilityZone)
		if err == nil && p > 0 {
			return Price{USDPerHour: p, Source: "spot-history"}, nil
		}
		if m, perr := strconv.ParseFloat(spotMax, 64); perr == nil && m > 0 {
			return Price{USDPerHour: m, Source: "spot-max"}, nil
		}
		if err != nil && !IsPermanent(err) {
			return Price{}, err
		}
	}
	p, ok := table[inst.Type]
	if !ok {
		return Price{}, permanent("price of "+inst.Type, "no on-demand price for %s in the price table", inst.Type)
	}
	return Price{USDPerHour: p, Source: "on-demand-list"}, nil
}

// SpotPrice is the most recent Linux/UNIX spot price of instanceType in az
// (any AZ when empty); 0 when EC2 has none.
func (c *Client) SpotPrice(ctx context.Context, instanceType, az string) (float64, error) {
	in := &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []types.InstanceType{types.InstanceType(instanceType)},
		ProductDescriptions: []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"},
		StartTime:           aws.Time(time.Now().Add(-6 * time.Hour)),
		MaxResults:          aws.Int32(100),
	}
	if az != "" {
		in.AvailabilityZone = aws.String(az)
	}
	out, err := c.api.DescribeSpotPriceHistory(ctx, in)
	if err != nil {
		return 0, classify("spot price of "+instanceType, err)
	}
	var best types.SpotPrice
	for _, p := range out.SpotPriceHistory {
		if p.InstanceType != types.InstanceType(instanceType) || (az != "" && aws.ToString(p.AvailabilityZone) != az) {
			continue
		}
		if best.Timestamp == nil || aws.ToTime(p.Timestamp).After(aws.ToTime(best.Timestamp)) {
			best = p
		}
	}
	if best.SpotPrice == nil {
		return 0, nil
	}
	v, err := strconv.ParseFloat(aws.ToString(best.SpotPrice), 64)
	if err != nil {
		return 0, retryable("spot price of "+instanceType, "", "bad price %q: %v", aws.ToString(best.SpotPrice), err)
	}
	return v, nil
}

// String formats a price for the session's cost line, e.g.
// "$0.0104/h (on-demand-list)" or "$0.00001/h (spot-history)".
func (p Price) String() string { return FormatUSD(p.USDPerHour) + "/h (" + p.Source + ")" }

// FormatHours formats instance-hours for the cost line: three decimals,
// or three significant digits where that takes more ("0.500", "12.345",
// "0.000792"), so a short use never reads "0.000 h".
func FormatHours(h float64) string { return formatHours(h, 3) }

// formatHours prints h with at least three decimals and at least digits
// significant digits, trailing zeros past the third decimal trimmed.
func formatHours(h float64, digits int) string {
	switch {
	case h == 0:
		return "0.000"
	case math.IsInf(h, 0) || math.IsNaN(h):
		return fmt.Sprintf("%v", h)
	}
	decimals := max(3, digits-1-int(math.Floor(math.Log10(math.Abs(h)))))
	if decimals > 20 {
		return strconv.FormatFloat(h, 'g', digits, 64)
	}
	s := strconv.FormatFloat(h, 'f', decimals, 64)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 4 {
		s = s[:len(s)-1]
	}
	return s
}

// CostTerm is the cost line's term for running hours at p, e.g.
// "0.0007906 h × $0.0104/h (on-demand-list) = $0.00000822". The amount is
// FormatUSD of the cost; the hours get as many digits as make the term
// multiply out (the hours as printed times the price as printed, formatted
// by FormatUSD, are the amount as printed): FormatHours's digits where they
// suffice, more for a use so short or an amount so precise that they do
// not. A price whose printed form is itself rounded may never multiply
// out; its hours print as FormatHours does.
func (p Price) CostTerm(hours float64) string {
	amount := FormatUSD(p.USDPerHour * hours)
	hs := FormatHours(hours)
	if price, ok := parseUSD(FormatUSD(p.USDPerHour)); ok {
		for digits := 3; digits <= 15; digits++ {
			s := formatHours(hours, digits)
			if v, err := strconv.ParseFloat(s, 64); err == nil && FormatUSD(v*price) == amount {
				hs = s
				break
			}
		}
	}
	return hs + " h × " + p.String() + " = " + amount
}

// parseUSD reads back what FormatUSD printed.
func parseUSD(s string) (float64, bool) {
	neg := strings.HasPrefix(s, "-")
	v, err := strconv.ParseFloat(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "$"), 64)
	if neg {
		v = -v
	}
	return v, err == nil
}

// FormatUSD formats dollars with meaningful precision: four decimals from
// a cent up ("$0.1070", "$12.3456"), three significant digits below it
// ("$0.0035", "$0.00001", "$0.0000123"), so a cheap spot price or a short
// session's cost never reads as "$0.0000"; zero is "$0.00".
func FormatUSD(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	switch {
	case v == 0:
		return "$0.00"
	case math.IsInf(v, 0) || math.IsNaN(v):
		return fmt.Sprintf("$%v", v)
	case v >= 0.01:
		return fmt.Sprintf("%s$%.4f", sign, v)
	}
	// Three significant digits: as many decimals as put the third one
	// last, then trailing zeros trimmed down to four decimals.
	decimals := 2 - int(math.Floor(math.Log10(v)))
	if decimals > 15 {
		return sign + "$" + strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	for len(s) > len("0.0000") && strings.HasSuffix(s, "0") {
		s = s[:len(s)-1]
	}
	return sign + "$" + s
}
