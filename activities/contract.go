package activities

import (
	"zcloud/cloud/ec2"
	"zcloud/cloud/notify"
	"zcloud/cloud/objstore"
)

// Payload types of the activity contract that come from the cloud
// packages. Workflows name them through these aliases, so workflow code
// imports no I/O package (DESIGN.md layering).
type (
	Volume             = ec2.Volume
	VolumeModification = ec2.VolumeModification
	Instance           = ec2.Instance
	Market             = ec2.Market
	SpotNotice         = ec2.SpotNotice
	NotifyEvent        = notify.Event
)

// Markets and severities workflows compare against.
const (
	MarketSpot     = ec2.Spot
	MarketOnDemand = ec2.OnDemand
	SeverityError  = notify.Error
)

// Storage classes and retrieval tiers of the archive contract.
type (
	StorageClass  = objstore.Class
	RetrievalTier = objstore.Tier
)

const (
	TierExpedited = objstore.Expedited
	TierStandard  = objstore.StandardTier
	TierBulk      = objstore.Bulk
)
