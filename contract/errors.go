package contract

// Error types that workflows and operators see. Permanent ones are
// non-retryable: retrying cannot change the outcome.
const (
	ErrTypeInvalidName    = "InvalidName"
	ErrTypeNotFound       = "NotFound"
	ErrTypeHostKey        = "HostKeyMismatch"
	ErrTypeUnreachable    = "TargetUnreachable"
	ErrTypeConfig         = "ConfigError"
	ErrTypeStreamMismatch = "StreamMismatch"
	ErrTypeKeyIncorrect   = "KeyIncorrect"
	ErrTypeNoSpace        = "NoSpace"
	ErrTypeUnsupported    = "Unsupported"
	ErrTypeTargetModified = "TargetModified"
	// ErrTypeNotAllowed: the request asks for something the worker's
	// config does not allow ("field: not allowed; why"; docs/security.md).
	ErrTypeNotAllowed = "NotAllowed"
)

// Error types of the archive activities (besides the common ones).
const (
	ErrTypeCorrupt       = "Corrupt"
	ErrTypeBrokenChain   = "BrokenChain"
	ErrTypeNoArchive     = "NoArchive"
	ErrTypeObjectMissing = "ObjectMissing"
)

// Error types of pool activities.
const (
	ErrTypePoolUnsafe  = "PoolUnsafe"       // a safety check refused the step
	ErrTypeScrubErrors = "ScrubFoundErrors" // a scrub repaired data or found errors
	ErrTypeEC2         = "EC2Error"
	// ErrTypePoolBusy: another operation (a grow, a scrub, a session)
	// holds the pool's operation id; the error names it.
	ErrTypePoolBusy = "PoolBusy"
	// ErrTypeWrongZone: the pool's volumes and the instance are not in
	// one availability zone.
	ErrTypeWrongZone = "WrongAvailabilityZone"
)

// Error types of the session.
const (
	ErrTypeLaunch   = "LaunchFailed"
	ErrTypeSSHReady = "SSHNotReady"
	// ErrTypeBootstrap: the instance's bootstrap script failed or never
	// finished.
	ErrTypeBootstrap = "BootstrapFailed"
	ErrTypeUnlock    = "UnlockFailed"
)
