package zfsexec

import "zcloud/zfsname"

// The name types live in package zfsname (no I/O, usable by workflows and
// config); these aliases keep zfsexec's callers compiling while they move.
type (
	InvalidNameError = zfsname.InvalidNameError
	Dataset          = zfsname.Dataset
	Snapshot         = zfsname.Snapshot
	Bookmark         = zfsname.Bookmark
	Pool             = zfsname.Pool
	Device           = zfsname.Device
	MapperName       = zfsname.MapperName
	HoldTag          = zfsname.HoldTag
	ResumeToken      = zfsname.ResumeToken
	PropName         = zfsname.PropName
)

var (
	IsInvalidName    = zfsname.IsInvalidName
	ParseDataset     = zfsname.ParseDataset
	MustDataset      = zfsname.MustDataset
	ParseSnapshot    = zfsname.ParseSnapshot
	MustSnapshot     = zfsname.MustSnapshot
	ParseBookmark    = zfsname.ParseBookmark
	ParsePool        = zfsname.ParsePool
	ParseDevice      = zfsname.ParseDevice
	ParseMapperName  = zfsname.ParseMapperName
	ParseHoldTag     = zfsname.ParseHoldTag
	ParseResumeToken = zfsname.ParseResumeToken
	ParsePropName    = zfsname.ParsePropName
	ParsePropValue   = zfsname.ParsePropValue
)
