package ec2

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
	"zcloud/poolplan"
)

// ModifySpec is the target of a volume modification; zero fields keep the
// current value.
type ModifySpec struct {
	VolumeID   string              `json:"volume_id"`
	Type       poolplan.VolumeType `json:"type,omitempty"`
	SizeGiB    int64               `json:"size_gib,omitempty"`
	IOPS       int64               `json:"iops,omitempty"`
	Throughput int64               `json:"throughput,omitempty"`
	// History is every modification zcloud recorded for this volume, and
	// Now the caller's clock (workflow time), for the 4-per-24-h rule.
	History []poolplan.Modification `json:"history,omitempty"`
	Now     time.Time               `json:"now"`
}

// sameAs matches a history entry to m, allowing for clock skew between the
// caller's clock and EBS's start time.
func sameModification(m ec2types.VolumeModification, h poolplan.Modification) bool {
	d := h.Start.Sub(m.Start)
	return h.VolumeID == m.VolumeID && h.TargetSizeGiB == m.TargetSizeGiB && d < 5*time.Minute && d > -5*time.Minute
}

// ModifyLimitError says when the 4-per-24-h rule allows the next
// modification, so a workflow can sleep until then.
type ModifyLimitError struct {
	VolumeID  string
	NotBefore time.Time
	Reason    string
}

func (e *ModifyLimitError) Error() string {
	return fmt.Sprintf("ec2: modify %s: %s", e.VolumeID, e.Reason)
}

// ModifyVolume starts a modification, enforcing AWS's rules itself (moto
// does not): no shrinking, per-type size and performance limits, the
// previous modification must have completed, at most 4 per rolling 24 h.
// The limit gives a *ModifyLimitError (wrapped in a permanent *Error: retrying
// now cannot help, waiting can). A modification to the same target already
// under way, or a volume already at the target, is returned unchanged.
func (c *Client) ModifyVolume(ctx context.Context, spec ModifySpec) (ec2types.VolumeModification, error) {
	op := "modify " + spec.VolumeID
	v, err := c.DescribeVolume(ctx, spec.VolumeID)
	if err != nil {
		return ec2types.VolumeModification{}, err
	}
	target := poolplan.VolumeSpec{Type: v.Type, SizeGiB: v.SizeGiB, IOPS: spec.IOPS, Throughput: spec.Throughput}
	if spec.Type != "" {
		target.Type = spec.Type
	}
	if spec.SizeGiB != 0 {
		target.SizeGiB = spec.SizeGiB
	}
	if target.Type == v.Type {
		// Unchanged performance settings are checked as they are (io1/io2
		// need IOPS); across types they come from the new type's defaults.
		if target.IOPS == 0 {
			target.IOPS = v.IOPS
		}
		if target.Throughput == 0 {
			target.Throughput = v.Throughput
		}
		if lim, ok := poolplan.Limits(target.Type); ok && lim.MaxIOPS == 0 {
			target.IOPS, target.Throughput = 0, 0 // gp2/st1/sc1 report derived values
		}
	}
	if target.SizeGiB < v.SizeGiB {
		return ec2types.VolumeModification{}, permanent(op, "EBS volumes cannot shrink (%d GiB → %d GiB)", v.SizeGiB, target.SizeGiB)
	}
	if err := poolplan.CheckVolume("", target); err != nil {
		return ec2types.VolumeModification{}, &Error{Op: op, Kind: KindPermanent, Code: "InvalidParameterValue", Message: err.Error(), Err: err}
	}
	latest, err := c.LatestModification(ctx, spec.VolumeID)
	if err != nil && !IsNotFound(err) {
		return ec2types.VolumeModification{}, err
	}
	inProgress := err == nil && (latest.State == poolplan.ModModifying || latest.State == poolplan.ModOptimizing)
	if inProgress && latest.TargetSizeGiB == target.SizeGiB && (latest.TargetType == "" || latest.TargetType == string(target.Type)) {
		return latest, nil // our own, from before a retry
	}
	if !inProgress && v.SizeGiB == target.SizeGiB && v.Type == target.Type &&
		(spec.IOPS == 0 || spec.IOPS == v.IOPS) && (spec.Throughput == 0 || spec.Throughput == v.Throughput) {
		return ec2types.VolumeModification{VolumeID: v.ID, State: poolplan.ModCompleted, TargetSizeGiB: v.SizeGiB, TargetType: string(v.Type), Progress: 100, Unchanged: true}, nil
	}
	if inProgress {
		return ec2types.VolumeModification{}, retryable(op, "IncorrectModificationState", "modification started %s is still %s", latest.Start.Format(time.RFC3339), latest.State)
	}
	history := spec.History
	// EBS's latest modification counts even if the caller lost its record
	// (a crash between ModifyVolume and saving the history).
	if err == nil && !latest.Start.IsZero() && !slices.ContainsFunc(history, func(h poolplan.Modification) bool { return sameModification(latest, h) }) {
		history = append(slices.Clone(history), latest.Record())
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	if rc := poolplan.CheckModificationRate(spec.VolumeID, history, now); !rc.Allowed {
		le := &ModifyLimitError{VolumeID: spec.VolumeID, NotBefore: rc.NotBefore, Reason: rc.Reason}
		return ec2types.VolumeModification{}, &Error{Op: op, Kind: KindPermanent, Code: "VolumeModificationRateExceeded", Message: rc.Reason, Err: le}
	}
	in := &ec2.ModifyVolumeInput{VolumeId: aws.String(spec.VolumeID)}
	if target.SizeGiB != v.SizeGiB {
		in.Size = aws.Int32(int32(target.SizeGiB))
	}
	if target.Type != v.Type {
		in.VolumeType = types.VolumeType(target.Type)
	}
	if spec.IOPS > 0 {
		in.Iops = aws.Int32(int32(spec.IOPS))
	}
	if spec.Throughput > 0 {
		in.Throughput = aws.Int32(int32(spec.Throughput))
	}
	out, err := c.api.ModifyVolume(ctx, in)
	if err != nil {
		return ec2types.VolumeModification{}, classify(op, err)
	}
	if out.VolumeModification == nil {
		return ec2types.VolumeModification{}, retryable(op, "", "no modification in the answer")
	}
	return fromModification(*out.VolumeModification), nil
}

func fromModification(m types.VolumeModification) ec2types.VolumeModification {
	return ec2types.VolumeModification{
		VolumeID:      aws.ToString(m.VolumeId),
		State:         poolplan.ModState(m.ModificationState),
		TargetSizeGiB: int64(aws.ToInt32(m.TargetSize)),
		TargetType:    string(m.TargetVolumeType),
		Progress:      aws.ToInt64(m.Progress),
		Start:         aws.ToTime(m.StartTime),
		End:           aws.ToTime(m.EndTime),
		Message:       aws.ToString(m.StatusMessage),
	}
}

// LatestModification returns the volume's most recent modification (EBS
// keeps only that one); KindNotFound if it was never modified.
func (c *Client) LatestModification(ctx context.Context, volumeID string) (ec2types.VolumeModification, error) {
	op := "describe modifications of " + volumeID
	out, err := c.api.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{volumeID}})
	if err != nil {
		return ec2types.VolumeModification{}, classify(op, err)
	}
	var latest *types.VolumeModification
	for i, m := range out.VolumesModifications {
		if aws.ToString(m.VolumeId) == volumeID && (latest == nil || aws.ToTime(m.StartTime).After(aws.ToTime(latest.StartTime))) {
			latest = &out.VolumesModifications[i]
		}
	}
	if latest == nil {
		return ec2types.VolumeModification{}, &Error{Op: op, Kind: KindNotFound, Code: "InvalidVolumeModification.NotFound"}
	}
	return fromModification(*latest), nil
}

// WaitModification polls until the latest modification reaches optimizing
// or completed (untilCompleted: completed only). The new size is usable
// from optimizing on; the next modification needs completed. A failed
// modification is a permanent error.
func (c *Client) WaitModification(ctx context.Context, volumeID string, untilCompleted bool) (ec2types.VolumeModification, error) {
	var m ec2types.VolumeModification
	err := c.poll(ctx, volumeID+" modification", func(ctx context.Context) (bool, string, error) {
		var err error
		m, err = c.LatestModification(ctx, volumeID)
		if IsNotFound(err) {
			return false, "not visible yet", nil
		}
		if err != nil {
			return false, "", err
		}
		switch m.State {
		case poolplan.ModFailed:
			return false, "", permanent("modify "+volumeID, "modification failed: %s", m.Message)
		case poolplan.ModCompleted:
			return true, "", nil
		case poolplan.ModOptimizing:
			return !untilCompleted, fmt.Sprintf("optimizing %d%%", m.Progress), nil
		}
		return false, fmt.Sprintf("%s %d%%", m.State, m.Progress), nil
	})
	return m, err
}
