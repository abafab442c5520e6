package ec2

import "zcloud/cloud/ec2/ec2types"

// The value types live in ec2types (no AWS SDK); these aliases keep this
// package's API unchanged.
type (
	Volume             = ec2types.Volume
	Attachment         = ec2types.Attachment
	VolumeModification = ec2types.VolumeModification
	Market             = ec2types.Market
	Instance           = ec2types.Instance
	SpotNotice         = ec2types.SpotNotice
)

// Markets.
const (
	OnDemand = ec2types.OnDemand
	Spot     = ec2types.Spot
)
