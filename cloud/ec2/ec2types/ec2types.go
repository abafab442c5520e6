// Package ec2types holds the EC2 values zcloud passes around (instances,
// volumes, modifications, spot notices) without the AWS SDK, so activity
// payloads and workflow code can name them without doing I/O. Package ec2
// builds them from the SDK's types.
package ec2types

import (
	"time"

	"zcloud/poolplan"
)

// Volume is an EBS volume as zcloud sees it.
type Volume struct {
	ID               string              `json:"id"`
	Type             poolplan.VolumeType `json:"type"`
	SizeGiB          int64               `json:"size_gib"`
	IOPS             int64               `json:"iops,omitempty"`
	Throughput       int64               `json:"throughput,omitempty"`
	AvailabilityZone string              `json:"availability_zone"`
	State            string              `json:"state"`
	Tags             map[string]string   `json:"tags,omitempty"`
	CreateTime       time.Time           `json:"create_time"`
	Attachments      []Attachment        `json:"attachments,omitempty"`
}

// Attachment is a volume's attachment to an instance.
type Attachment struct {
	VolumeID   string `json:"volume_id"`
	InstanceID string `json:"instance_id"`
	Device     string `json:"device"`
	State      string `json:"state"` // attaching, attached, detaching, detached
}

// AttachedTo returns the attachment to instanceID, if any.
func (v Volume) AttachedTo(instanceID string) (Attachment, bool) {
	for _, a := range v.Attachments {
		if a.InstanceID == instanceID {
			return a, true
		}
	}
	return Attachment{}, false
}

// VolumeModification is the state of a volume's latest modification.
type VolumeModification struct {
	VolumeID      string            `json:"volume_id"`
	State         poolplan.ModState `json:"state"`
	TargetSizeGiB int64             `json:"target_size_gib"`
	TargetType    string            `json:"target_type,omitempty"`
	Progress      int64             `json:"progress"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end,omitzero"`
	Message       string            `json:"message,omitempty"`
	// Unchanged: the volume already matched the spec; nothing was modified
	// and nothing should be added to the history.
	Unchanged bool `json:"unchanged,omitempty"`
}

// Record converts m into the history entry the caller keeps.
func (m VolumeModification) Record() poolplan.Modification {
	return poolplan.Modification{VolumeID: m.VolumeID, Start: m.Start, State: m.State, TargetSizeGiB: m.TargetSizeGiB}
}

// Market is how an instance is paid for.
type Market string

// Markets.
const (
	OnDemand Market = "on-demand"
	Spot     Market = "spot"
)

// Instance is what zcloud needs to know about an EC2 instance.
type Instance struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	State            string            `json:"state"`
	Market           Market            `json:"market"`
	SpotRequestID    string            `json:"spot_request_id,omitempty"`
	AvailabilityZone string            `json:"availability_zone"`
	SubnetID         string            `json:"subnet_id,omitempty"`
	PublicIP         string            `json:"public_ip,omitempty"`
	PrivateIP        string            `json:"private_ip,omitempty"`
	LaunchTime       time.Time         `json:"launch_time"`
	Tags             map[string]string `json:"tags,omitempty"`
	// Devices maps attached device names to volume ids (root included).
	Devices map[string]string `json:"devices,omitempty"`
}

// Address is the address to SSH to: public if any, else private.
func (i Instance) Address() string {
	if i.PublicIP != "" {
		return i.PublicIP
	}
	return i.PrivateIP
}

// SpotNotice is a spot interruption notice: EC2 will Action the instance
// at Time (about two minutes after the notice appears).
type SpotNotice struct {
	Action string    `json:"action"` // terminate, stop or hibernate
	Time   time.Time `json:"time"`
}
