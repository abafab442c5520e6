package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// Kind sorts failures by what a caller should do about them.
type Kind string

const (
	// KindRetryable: throttling, eventual consistency, transient state;
	// retrying the same call later can succeed.
	KindRetryable Kind = "retryable"
	// KindCapacity: AWS has no capacity (or the spot price is too low) for
	// this instance type now; try another type or market, or later.
	KindCapacity Kind = "capacity"
	// KindPermanent: the request itself is wrong (bad AMI, subnet,
	// permissions, parameters); retrying cannot help.
	KindPermanent Kind = "permanent"
	// KindNotFound: the resource does not exist (any more).
	KindNotFound Kind = "not-found"
)

// Error is every failure of this package.
type Error struct {
	Op      string // e.g. "RunInstances", "attach vol-1 to i-2"
	Kind    Kind
	Code    string // AWS error or spot status code, if any
	Message string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ec2: ")
	b.WriteString(e.Op)
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	b.WriteString(" (" + string(e.Kind) + ")")
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable says whether retrying the operation (unchanged) can succeed.
// Temporal activities turn !Retryable into a non-retryable application
// error, with Code as its type.
func (e *Error) Retryable() bool { return e.Kind == KindRetryable || e.Kind == KindCapacity }

// KindOf returns err's Kind; errors from outside this package are retryable.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindRetryable
}

// IsRetryable, IsCapacity, IsPermanent and IsNotFound test KindOf(err).
func IsRetryable(err error) bool {
	k := KindOf(err)
	return k == KindRetryable || k == KindCapacity
}
func IsCapacity(err error) bool  { return KindOf(err) == KindCapacity }
func IsPermanent(err error) bool { return KindOf(err) == KindPermanent }
func IsNotFound(err error) bool  { return KindOf(err) == KindNotFound }

// Error codes, from the EC2 API reference "Error codes".
var (
	capacityCodes = set(
		"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
		"InsufficientCapacity", "InsufficientCapacityOnHost", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded",
		"Unsupported", // instance type not offered in this AZ: another type may be
	)
	// Spot request status codes that mean "not now, not at this price".
	spotCapacityStatus = set(
		"capacity-not-available", "capacity-oversubscribed", "price-too-low", "not-scheduled-yet",
		"az-group-constraint", "placement-group-constraint", "constraint-not-fulfillable", "launch-group-constraint",
	)
	permanentCodes = set(
		"UnauthorizedOperation", "AuthFailure", "OptInRequired", "Blocked", "PendingVerification",
		"InvalidClientTokenId", "SignatureDoesNotMatch", "IdempotentParameterMismatch",
		"MissingParameter", "InvalidParameter", "InvalidParameterValue", "InvalidParameterCombination",
		"InvalidAMIID.Malformed", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
		"InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed", "InvalidSubnet",
		"InvalidGroup.NotFound", "InvalidGroupId.Malformed", "InvalidKeyPair.NotFound",
		"InvalidInstanceType", "InvalidBlockDeviceMapping", "InvalidUserData.Malformed",
		"InstanceLimitExceeded", "VcpuLimitExceeded", "VolumeLimitExceeded", "MaxIOPSLimitExceeded",
		"InvalidVolume.ZoneMismatch", "InvalidAvailabilityZone", "UnsupportedOperation",
		"VolumeTypeNotAvailableInZone",
	)
	notFoundCodes = set(
		"InvalidInstanceID.NotFound", "InvalidVolume.NotFound", "InvalidSpotInstanceRequestID.NotFound",
		"InvalidAttachment.NotFound", "InvalidVolumeModification.NotFound",
	)
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// classify wraps an SDK error with its Kind.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Kind: KindRetryable, Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code, e.Message = api.ErrorCode(), api.ErrorMessage()
		switch {
		case capacityCodes[e.Code]:
			e.Kind = KindCapacity
		case notFoundCodes[e.Code]:
			e.Kind = KindNotFound
		case permanentCodes[e.Code]:
			e.Kind = KindPermanent
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e.Message = err.Error()
	}
	return e
}

func permanent(op, format string, args ...any) error {
	return &Error{Op: op, Kind: KindPermanent, Message: fmt.Sprintf(format, args...)}
}

func retryable(op, code, format string, args ...any) error {
	return &Error{Op: op, Kind: KindRetryable, Code: code, Message: fmt.Sprintf(format, args...)}
}
