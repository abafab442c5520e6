package activities

import "zcloud/contract"

// The activity contract (names, payloads, error types) lives in package
// contract, which does no I/O. These aliases keep code that still names
// them through activities compiling; new code uses contract directly.
type (
	ArchivePlanRequest       = contract.ArchivePlanRequest
	ArchivePlan              = contract.ArchivePlan
	ArchiveStreamRequest     = contract.ArchiveStreamRequest
	ArchiveStreamReport      = contract.ArchiveStreamReport
	CycleCheckRequest        = contract.CycleCheckRequest
	CycleCheck               = contract.CycleCheck
	CycleSummary             = contract.CycleSummary
	DeletionPlanRequest      = contract.DeletionPlanRequest
	DeletionPlan             = contract.DeletionPlan
	DeleteCyclesRequest      = contract.DeleteCyclesRequest
	DeletionReport           = contract.DeletionReport
	ManifestSummary          = contract.ManifestSummary
	StreamInfo               = contract.StreamInfo
	HoldRequest              = contract.HoldRequest
	PolicySnapshot           = contract.PolicySnapshot
	SnapshotListing          = contract.SnapshotListing
	DueRequest               = contract.DueRequest
	DueReport                = contract.DueReport
	PlanRequest              = contract.PlanRequest
	PlannedDestroy           = contract.PlannedDestroy
	PlanReport               = contract.PlanReport
	DestroyRequest           = contract.DestroyRequest
	Skipped                  = contract.Skipped
	DestroyReport            = contract.DestroyReport
	PoolOperation            = contract.PoolOperation
	PoolVolumeRequest        = contract.PoolVolumeRequest
	PoolDeviceRequest        = contract.PoolDeviceRequest
	PoolAttachResult         = contract.PoolAttachResult
	PoolModifyRequest        = contract.PoolModifyRequest
	PoolModifyResult         = contract.PoolModifyResult
	PoolDestroyVolumesReport = contract.PoolDestroyVolumesReport
	PoolCreateRequest        = contract.PoolCreateRequest
	PoolVolume               = contract.PoolVolume
	PoolState                = contract.PoolState
	PoolReplaceRequest       = contract.PoolReplaceRequest
	ResilverReport           = contract.ResilverReport
	PoolExpandRequest        = contract.PoolExpandRequest
	PoolExpandResult         = contract.PoolExpandResult
	ScrubReport              = contract.ScrubReport
	Progress                 = contract.Progress
	TargetCheck              = contract.TargetCheck
	CheckRequest             = contract.CheckRequest
	SnapshotRequest          = contract.SnapshotRequest
	SendRequest              = contract.SendRequest
	SendReport               = contract.SendReport
	RestorePlanRequest       = contract.RestorePlanRequest
	RestorePlan              = contract.RestorePlan
	RetrievalRequest         = contract.RetrievalRequest
	Retrieval                = contract.Retrieval
	ReceiveRequest           = contract.ReceiveRequest
	ReceiveReport            = contract.ReceiveReport
	VerifyPlanRequest        = contract.VerifyPlanRequest
	VerifyPlan               = contract.VerifyPlan
	Finding                  = contract.Finding
	VerifyStreamRequest      = contract.VerifyStreamRequest
	VerifyStreamReport       = contract.VerifyStreamReport
	SessionPlan              = contract.SessionPlan
	PlannedReplication       = contract.PlannedReplication
	LaunchRequest            = contract.LaunchRequest
	SessionInstance          = contract.SessionInstance
	ReleaseRequest           = contract.ReleaseRequest
	SessionStep              = contract.SessionStep
	InstanceUse              = contract.InstanceUse
	CostRequest              = contract.CostRequest
	CostItem                 = contract.CostItem
	CostReport               = contract.CostReport
	TargetAddr               = contract.TargetAddr
	Volume                   = contract.Volume
	VolumeModification       = contract.VolumeModification
	Instance                 = contract.Instance
	Market                   = contract.Market
	SpotNotice               = contract.SpotNotice
	StorageClass             = contract.StorageClass
	RetrievalTier            = contract.RetrievalTier
	Severity                 = contract.Severity
	NotifyEvent              = contract.NotifyEvent
	Price                    = contract.Price
)

const (
	ErrTypeInvalidName    = contract.ErrTypeInvalidName
	ErrTypeNotFound       = contract.ErrTypeNotFound
	ErrTypeHostKey        = contract.ErrTypeHostKey
	ErrTypeUnreachable    = contract.ErrTypeUnreachable
	ErrTypeConfig         = contract.ErrTypeConfig
	ErrTypeStreamMismatch = contract.ErrTypeStreamMismatch
	ErrTypeKeyIncorrect   = contract.ErrTypeKeyIncorrect
	ErrTypeNoSpace        = contract.ErrTypeNoSpace
	ErrTypeUnsupported    = contract.ErrTypeUnsupported
	ErrTypeTargetModified = contract.ErrTypeTargetModified
	ErrTypeNotAllowed     = contract.ErrTypeNotAllowed
	ArchiveFull           = contract.ArchiveFull
	ArchiveIncremental    = contract.ArchiveIncremental
	ArchiveSkip           = contract.ArchiveSkip
	ErrTypeCorrupt        = contract.ErrTypeCorrupt
	ErrTypeBrokenChain    = contract.ErrTypeBrokenChain
	ErrTypeNoArchive      = contract.ErrTypeNoArchive
	ErrTypeObjectMissing  = contract.ErrTypeObjectMissing
	HoldTagPrefix         = contract.HoldTagPrefix
	ArchiveHoldTag        = contract.ArchiveHoldTag
	SkipGone              = contract.SkipGone
	SkipChanged           = contract.SkipChanged
	ErrTypePoolUnsafe     = contract.ErrTypePoolUnsafe
	ErrTypeScrubErrors    = contract.ErrTypeScrubErrors
	ErrTypeEC2            = contract.ErrTypeEC2
	ErrTypeLaunch         = contract.ErrTypeLaunch
	ErrTypeSSHReady       = contract.ErrTypeSSHReady
	ErrTypeUnlock         = contract.ErrTypeUnlock
	ErrTypeBootstrap      = contract.ErrTypeBootstrap
	ModeRaw               = contract.ModeRaw
	ModePlaintext         = contract.ModePlaintext
	ModePlain             = contract.ModePlain
	MarketSpot            = contract.MarketSpot
	MarketOnDemand        = contract.MarketOnDemand
	TierExpedited         = contract.TierExpedited
	TierStandard          = contract.TierStandard
	TierBulk              = contract.TierBulk
	SeverityError         = contract.SeverityError
)
