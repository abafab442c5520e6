package contract

import (
	"fmt"
	"time"

	"zcloud/config"
	"zcloud/poolplan"
)

// PoolOperation is what runs (or last ran) under a pool's operation
// workflow id (the workflows package names it: pool/NAME).
type PoolOperation struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	// Type is the workflow type (PoolGrow, PoolScrub, ...); empty when
	// nothing ever ran under the id.
	Type    string    `json:"type,omitempty"`
	Running bool      `json:"running"`
	Started time.Time `json:"started,omitzero"`
}

// PoolVolumeRequest asks for one new volume of the pool.
type PoolVolumeRequest struct {
	Pool config.Pool `json:"pool"`
	// Slot is the device position ("v0/d2"), tagged for humans and for
	// finding the volume again.
	Slot string `json:"slot"`
	// Token makes the create idempotent: the workflow derives it from its
	// own id and the step, never from a clock.
	Token    string              `json:"token"`
	Spec     poolplan.VolumeSpec `json:"spec"`
	Replaces string              `json:"replaces,omitempty"`
}

// PoolDeviceRequest names one volume of the pool.
type PoolDeviceRequest struct {
	Pool     config.Pool `json:"pool"`
	VolumeID string      `json:"volume_id"`
}

// PoolAttachResult says where an attached volume shows up.
type PoolAttachResult struct {
	VolumeID string `json:"volume_id"`
	// EC2Device is the name EC2 attached it under (/dev/sdf); on Nitro a label only.
	EC2Device string `json:"ec2_device"`
	// Device is the by-id node found on the instance.
	Device string `json:"device"`
}

// PoolModifyRequest grows one volume in place.
type PoolModifyRequest struct {
	Pool     config.Pool `json:"pool"`
	VolumeID string      `json:"volume_id"`
	SizeGiB  int64       `json:"size_gib"`
	// History is every modification the workflow knows of; Now is
	// workflow time. Both feed the 4-per-24-h rule.
	History []poolplan.Modification `json:"history"`
	Now     time.Time               `json:"now"`
}

// PoolModifyResult is a started modification, or a deferral.
type PoolModifyResult struct {
	Modification poolplan.Modification `json:"modification,omitzero"`
	// Unchanged: the volume was already at the size.
	Unchanged bool `json:"unchanged,omitempty"`
	// Deferred: EBS's rules forbid a modification now; NotBefore says when
	// the rate limit allows the next one (zero: wait for the running one).
	Deferred  bool      `json:"deferred,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// PoolDestroyVolumesReport says what destroy did with the tagged volumes.
type PoolDestroyVolumesReport struct {
	Deleted []string `json:"deleted"`
	// Skipped are tagged volumes attached to another instance: not ours to delete.
	Skipped []string `json:"skipped,omitempty"`
}

// PoolCreateRequest builds the zpool from attached volumes.
type PoolCreateRequest struct {
	Pool config.Pool `json:"pool"`
	// Vdevs lists each vdev's volume ids in order.
	Vdevs [][]string `json:"vdevs"`
}

// PoolVolume is a pool device backed by an EBS volume.
type PoolVolume struct {
	poolplan.Volume
	Device string `json:"device"`
	State  string `json:"state"`
	Slot   string `json:"slot,omitempty"`
	// Modifications: the volume's recent modifications (its tag, with the
	// latest one's state from EBS).
	Modifications []poolplan.Modification `json:"modifications,omitempty"`
}

// PoolState is what PoolInspect saw.
type PoolState struct {
	Name      string         `json:"name"`
	Health    string         `json:"health"`
	Healthy   bool           `json:"healthy"`
	SizeBytes uint64         `json:"size_bytes"`
	Vdevs     [][]PoolVolume `json:"vdevs"`
	// Resilvering: a resilver runs or a replacing vdev is left.
	Resilvering bool `json:"resilvering,omitempty"`
	// Foreign lists devices that are not EBS volumes (zcloud cannot
	// replace or grow them).
	Foreign []string `json:"foreign,omitempty"`
	Scan    string   `json:"scan,omitempty"`
}

// Volumes lists every member volume in zpool order.
func (s PoolState) Volumes() []PoolVolume {
	var out []PoolVolume
	for _, vd := range s.Vdevs {
		out = append(out, vd...)
	}
	return out
}

// PlanVdevs is the vdev list poolplan takes.
func (s PoolState) PlanVdevs() [][]poolplan.Volume {
	out := make([][]poolplan.Volume, len(s.Vdevs))
	for i, vd := range s.Vdevs {
		for _, v := range vd {
			out[i] = append(out[i], v.Volume)
		}
	}
	return out
}

// PoolReplaceRequest names one device swap.
type PoolReplaceRequest struct {
	Pool        config.Pool `json:"pool"`
	OldVolumeID string      `json:"old_volume_id"`
	NewVolumeID string      `json:"new_volume_id"`
}

// ResilverReport is how a replacement's resilver ended.
type ResilverReport struct {
	Resilvered uint64  `json:"resilvered_bytes"`
	Seconds    float64 `json:"seconds"`
	Scan       string  `json:"scan"`
}

// PoolExpandRequest grows the pool into its devices' new size.
type PoolExpandRequest struct {
	Pool      config.Pool `json:"pool"`
	VolumeIDs []string    `json:"volume_ids"`
}

// PoolExpandResult is the pool's size after expanding.
type PoolExpandResult struct {
	SizeBytes uint64 `json:"size_bytes"`
	Method    string `json:"method"`
}

// ScrubReport is a finished scrub.
type ScrubReport struct {
	Pool          string  `json:"pool"`
	RepairedBytes uint64  `json:"repaired_bytes"`
	Errors        uint64  `json:"errors"`        // unrecoverable errors the scan reported
	DeviceErrors  uint64  `json:"device_errors"` // read+write+checksum errors on devices
	Healthy       bool    `json:"healthy"`
	Seconds       float64 `json:"seconds"`
	Scan          string  `json:"scan"`
	Resumed       bool    `json:"resumed,omitempty"` // a retry found the scrub it started
}

// Clean is true when the scrub found nothing to repair and no errors.
func (r ScrubReport) Clean() bool {
	return r.RepairedBytes == 0 && r.Errors == 0 && r.DeviceErrors == 0 && r.Healthy
}

// Summary is a one-line description.
func (r ScrubReport) Summary() string {
	return fmt.Sprintf("scrub of %s: repaired %d bytes, %d errors, %d device errors, healthy=%t", r.Pool, r.RepairedBytes, r.Errors, r.DeviceErrors, r.Healthy)
}
