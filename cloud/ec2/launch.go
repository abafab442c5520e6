package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
)

// LaunchSpec describes the instance to launch.
type LaunchSpec struct {
	AMI              string            `json:"ami"`
	InstanceType     string            `json:"instance_type"`
	SubnetID         string            `json:"subnet_id,omitempty"`
	AvailabilityZone string            `json:"availability_zone,omitempty"` // only without SubnetID
	SecurityGroupIDs []string          `json:"security_group_ids,omitempty"`
	KeyName          string            `json:"key_name,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	// UserData is the plain text (cloud-config); it is base64-encoded here.
	UserData string          `json:"user_data,omitempty"`
	Market   ec2types.Market `json:"market"`
	// SpotMaxPrice in USD per hour; empty caps at the on-demand price.
	SpotMaxPrice string `json:"spot_max_price,omitempty"`
	// FallbackInstanceTypes are tried in order after InstanceType on
	// capacity errors, first as spot (for Spot), then on demand.
	FallbackInstanceTypes []string `json:"fallback_instance_types,omitempty"`
	// FallbackToOnDemand lets a spot launch end up on demand.
	FallbackToOnDemand bool `json:"fallback_to_on_demand,omitempty"`
	// ClientToken makes Launch idempotent: a retry with the same token
	// returns the instance the first call launched. Required; derive it from
	// the workflow id and step, never from time.
	ClientToken string `json:"client_token"`
}

func (s LaunchSpec) validate() error {
	switch {
	case s.AMI == "":
		return permanent("launch", "no AMI")
	case s.InstanceType == "":
		return permanent("launch", "no instance type")
	case s.ClientToken == "":
		return permanent("launch", "no client token (needed so a retry cannot launch twice)")
	case s.Market != ec2types.OnDemand && s.Market != ec2types.Spot && s.Market != "":
		return permanent("launch", "unknown market %q", s.Market)
	}
	return nil
}

// attempt is one market and instance type to try.
type attempt struct {
	market ec2types.Market
	typ    string
}

func (s LaunchSpec) attempts() []attempt {
	types := append([]string{s.InstanceType}, s.FallbackInstanceTypes...)
	var out []attempt
	if s.Market == ec2types.Spot {
		for _, t := range types {
			out = append(out, attempt{ec2types.Spot, t})
		}
		if !s.FallbackToOnDemand {
			return out
		}
	}
	for _, t := range types {
		out = append(out, attempt{ec2types.OnDemand, t})
	}
	return out
}

// Launch starts one instance as spec says and returns it (usually still
// pending; use WaitRunning). On capacity errors it moves down the fallback
// list; if all fail the error is KindCapacity (retry later). Bad AMI,
// subnet, security group or permissions fail at once with KindPermanent.
//
// Idempotency: every instance is tagged with the spec's ClientToken at
// creation, and a call first looks for a live instance (or a spot request
// still open, or active with a live instance) carrying it. RunInstances and RequestSpotInstances also get a
// ClientToken derived from it, so AWS itself dedupes a call that was made
// but whose answer was lost. One token means at most one live instance:
// before returning, Launch cancels the token's other spot requests that
// are still open or active and terminates any other instance of the token
// (what an attempt that died half way may have left), and CleanupLaunch
// gives everything back when the launch is abandoned.
func (c *Client) Launch(ctx context.Context, spec LaunchSpec) (ec2types.Instance, error) {
	if err := spec.validate(); err != nil {
		return ec2types.Instance{}, err
	}
	existing, err := c.FindInstancesByTag(ctx, map[string]string{TagClientToken: spec.ClientToken}, false)
	if err != nil {
		return ec2types.Instance{}, err
	}
	if len(existing) > 0 {
		return c.keepOnly(ctx, spec, existing[0])
	}
	if spec.Market == ec2types.Spot {
		if inst, ok, err := c.resumeSpot(ctx, spec); ok || (err != nil && !IsCapacity(err)) {
			if err != nil {
				return inst, err
			}
			return c.keepOnly(ctx, spec, inst)
		}
	}
	var failures []string
	for _, a := range spec.attempts() {
		var inst ec2types.Instance
		var err error
		if a.market == ec2types.Spot {
			inst, err = c.launchSpot(ctx, spec, a.typ)
		} else {
			inst, err = c.launchOnDemand(ctx, spec, a.typ)
		}
		if err == nil {
			return c.keepOnly(ctx, spec, inst)
		}
		if !IsCapacity(err) {
			return ec2types.Instance{}, err
		}
		code := err.(*Error).Code
		failures = append(failures, fmt.Sprintf("%s %s: %s", a.market, a.typ, code))
		if c.opts.OnPoll != nil {
			c.opts.OnPoll(ctx, fmt.Sprintf("launch: no capacity for %s %s (%s), trying next", a.market, a.typ, code))
		}
	}
	return ec2types.Instance{}, &Error{Op: "launch", Kind: KindCapacity, Code: "NoCapacity", Message: "every option failed: " + strings.Join(failures, "; ")}
}

// keepOnly returns inst after cancelling what else spec's token has: spot
// requests of earlier attempts still open or active, and their instances.
func (c *Client) keepOnly(ctx context.Context, spec LaunchSpec, inst ec2types.Instance) (ec2types.Instance, error) {
	done, err := c.cleanupLaunch(ctx, spec.ClientToken, inst.ID, nil)
	if err != nil {
		return ec2types.Instance{}, err
	}
	if !done.Empty() && c.opts.OnPoll != nil {
		c.opts.OnPoll(ctx, "launch: kept "+inst.ID+", left behind by an earlier attempt: "+done.String())
	}
	return inst, nil
}

func (c *Client) launchOnDemand(ctx context.Context, spec LaunchSpec, typ string) (ec2types.Instance, error) {
	op := "RunInstances " + typ
	// A terminated instance from an earlier try must not be returned again by
	// AWS's own ClientToken dedupe, so the token counts them.
	gone, err := c.FindInstancesByTag(ctx, map[string]string{TagClientToken: spec.ClientToken}, true)
	if err != nil {
		return ec2types.Instance{}, err
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(spec.AMI),
		InstanceType: types.InstanceType(typ),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		ClientToken:  aws.String(deriveToken(spec.ClientToken, ec2types.OnDemand, typ, len(gone))),
		TagSpecifications: []types.TagSpecification{
			tagSpec(types.ResourceTypeInstance, withTag(spec.Tags, TagClientToken, spec.ClientToken)),
		},
	}
	if len(spec.Tags) > 0 {
		in.TagSpecifications = append(in.TagSpecifications, tagSpec(types.ResourceTypeVolume, spec.Tags))
	}
	if spec.SubnetID != "" {
		in.SubnetId = aws.String(spec.SubnetID)
	} else if spec.AvailabilityZone != "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(spec.AvailabilityZone)}
	}
	if len(spec.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = spec.SecurityGroupIDs
	}
	if spec.KeyName != "" {
		in.KeyName = aws.String(spec.KeyName)
	}
	if spec.UserData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	out, err := c.api.RunInstances(ctx, in)
	if err != nil {
		return ec2types.Instance{}, classify(op, err)
	}
	if len(out.Instances) != 1 {
		return ec2types.Instance{}, retryable(op, "", "got %d instances, want 1", len(out.Instances))
	}
	return fromInstance(out.Instances[0]), nil
}

// deriveToken makes the per-attempt ClientToken (AWS allows 64 ASCII chars).
func deriveToken(base string, m ec2types.Market, typ string, generation int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%d", base, m, typ, generation))
	suffix := hex.EncodeToString(sum[:])[:12]
	if len(base) > 64-1-len(suffix) {
		b := sha256.Sum256([]byte(base))
		base = hex.EncodeToString(b[:])[:32]
	}
	return base + "-" + suffix
}
