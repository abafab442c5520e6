// Package contract is the activity contract: the names workflows schedule
// activities by, their request and result payloads, and the error types they
// fail with. It does no I/O, so workflows, the CLI and config import it
// instead of package activities (which implements it). Payload JSON field
// names are part of recorded histories: never rename them.
package contract

import (
	"time"

	"zcloud/cloud/ec2/ec2types"
	"zcloud/cloud/objstore"
)

// Activity names: each is the name of the *activities.Activities method
// the worker registers (activities tests check the two lists match).
const (
	PlanArchive             = "PlanArchive"
	ArchiveStream           = "ArchiveStream"
	CheckArchiveCycle       = "CheckArchiveCycle"
	PlanArchiveDeletion     = "PlanArchiveDeletion"
	DeleteArchiveCycles     = "DeleteArchiveCycles"
	DescribeArchive         = "DescribeArchive"
	HoldBase                = "HoldBase"
	SnapshotDue             = "SnapshotDue"
	PlanPrune               = "PlanPrune"
	DestroySnapshots        = "DestroySnapshots"
	PoolSettings            = "PoolSettings"
	PoolDescribeOperation   = "PoolDescribeOperation"
	PoolCreateVolume        = "PoolCreateVolume"
	PoolAttachVolume        = "PoolAttachVolume"
	PoolMount               = "PoolMount"
	PoolUnmount             = "PoolUnmount"
	PoolDetachVolume        = "PoolDetachVolume"
	PoolDeleteVolume        = "PoolDeleteVolume"
	PoolModifyVolume        = "PoolModifyVolume"
	PoolCheckModification   = "PoolCheckModification"
	PoolDestroyVolumes      = "PoolDestroyVolumes"
	PoolLUKSOpen            = "PoolLUKSOpen"
	PoolLUKSClose           = "PoolLUKSClose"
	PoolZpoolCreate         = "PoolZpoolCreate"
	PoolImport              = "PoolImport"
	PoolExport              = "PoolExport"
	PoolInspect             = "PoolInspect"
	PoolReplace             = "PoolReplace"
	PoolWaitResilver        = "PoolWaitResilver"
	PoolVerifyReplaced      = "PoolVerifyReplaced"
	PoolExpand              = "PoolExpand"
	PoolScrub               = "PoolScrub"
	PoolDestroyZpool        = "PoolDestroyZpool"
	CheckTarget             = "CheckTarget"
	CheckTargetAt           = "CheckTargetAt"
	TakeSnapshot            = "TakeSnapshot"
	SendSnapshots           = "SendSnapshots"
	PlanArchiveRestore      = "PlanArchiveRestore"
	RequestArchiveRetrieval = "RequestArchiveRetrieval"
	ArchiveRetrievalStatus  = "ArchiveRetrievalStatus"
	ReceiveArchiveStream    = "ReceiveArchiveStream"
	PlanArchiveVerify       = "PlanArchiveVerify"
	VerifyArchiveStream     = "VerifyArchiveStream"
	ClearDrillScratch       = "ClearDrillScratch"
	FinishDeepDrill         = "FinishDeepDrill"
	PlanSession             = "PlanSession"
	LaunchInstance          = "LaunchInstance"
	StartInstance           = "StartInstance"
	ReleaseInstance         = "ReleaseInstance"
	WaitSSH                 = "WaitSSH"
	Unlock                  = "Unlock"
	ImportPool              = "ImportPool"
	ExportPool              = "ExportPool"
	Lock                    = "Lock"
	WatchSpot               = "WatchSpot"
	SessionCost             = "SessionCost"
	Notify                  = "Notify"
	PlanStaging             = "PlanStaging"
	StageSnapshot           = "StageSnapshot"
	SnapshotStaging         = "SnapshotStaging"
	Catalog                 = "Catalog"
)

// Names lists every activity name above.
func Names() []string {
	return []string{
		PlanArchive,
		ArchiveStream,
		CheckArchiveCycle,
		PlanArchiveDeletion,
		DeleteArchiveCycles,
		DescribeArchive,
		HoldBase,
		SnapshotDue,
		PlanPrune,
		DestroySnapshots,
		PoolSettings,
		PoolDescribeOperation,
		PoolCreateVolume,
		PoolAttachVolume,
		PoolMount,
		PoolUnmount,
		PoolDetachVolume,
		PoolDeleteVolume,
		PoolModifyVolume,
		PoolCheckModification,
		PoolDestroyVolumes,
		PoolLUKSOpen,
		PoolLUKSClose,
		PoolZpoolCreate,
		PoolImport,
		PoolExport,
		PoolInspect,
		PoolReplace,
		PoolWaitResilver,
		PoolVerifyReplaced,
		PoolExpand,
		PoolScrub,
		PoolDestroyZpool,
		CheckTarget,
		CheckTargetAt,
		TakeSnapshot,
		SendSnapshots,
		PlanArchiveRestore,
		RequestArchiveRetrieval,
		ArchiveRetrievalStatus,
		ReceiveArchiveStream,
		PlanArchiveVerify,
		VerifyArchiveStream,
		ClearDrillScratch,
		FinishDeepDrill,
		PlanSession,
		LaunchInstance,
		StartInstance,
		ReleaseInstance,
		WaitSSH,
		Unlock,
		ImportPool,
		ExportPool,
		Lock,
		WatchSpot,
		SessionCost,
		Notify,
		PlanStaging,
		StageSnapshot,
		SnapshotStaging,
		Catalog,
	}
}

// Payload types that come from the cloud packages' pure value packages.
type (
	Volume             = ec2types.Volume
	VolumeModification = ec2types.VolumeModification
	Instance           = ec2types.Instance
	Market             = ec2types.Market
	SpotNotice         = ec2types.SpotNotice
	StorageClass       = objstore.Class
	RetrievalTier      = objstore.Tier
)

// Markets, and the retrieval tiers of the archive contract.
const (
	MarketSpot     = ec2types.Spot
	MarketOnDemand = ec2types.OnDemand
	TierExpedited  = objstore.Expedited
	TierStandard   = objstore.StandardTier
	TierBulk       = objstore.Bulk
)

// Severity ranks a NotifyEvent (notify.Severity's values).
type Severity string

// Severities.
const (
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// NotifyEvent is one notification (notify.Event's fields and JSON).
type NotifyEvent struct {
	Subject  string   `json:"subject"`
	Body     string   `json:"body"`
	Severity Severity `json:"severity"`
	// Time is when it happened; zero means now (set by the notifier).
	Time time.Time `json:"time,omitzero"`
	// Fields are extra key/values (workflow id, pool, dataset).
	Fields map[string]string `json:"fields,omitempty"`
}
