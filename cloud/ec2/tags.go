package ec2

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag keys zcloud sets on what it creates.
const (
	// TagClientToken marks a resource with the idempotency token that
	// created it, so a retried create finds it instead of making another.
	TagClientToken = "zcloud:client-token"
	// TagSpotRequest records the spot request an instance came from.
	TagSpotRequest = "zcloud:spot-request"
)

func toTags(m map[string]string) []types.Tag {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func fromTags(ts []types.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func tagSpec(rt types.ResourceType, m map[string]string) types.TagSpecification {
	return types.TagSpecification{ResourceType: rt, Tags: toTags(m)}
}

// tagFilters turns {k: v} into EC2 "tag:k" filters, in key order.
func tagFilters(m map[string]string) []types.Filter {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]types.Filter, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Filter{Name: aws.String("tag:" + k), Values: []string{m[k]}})
	}
	return out
}

func withTag(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}
