package contract

import "zcloud/zfsname"

// TargetCheck is what CheckTarget learned.
type TargetCheck struct {
	Target     string `json:"target"`
	Host       string `json:"host"`
	SourceZFS  string `json:"source_zfs"`
	TargetZFS  string `json:"target_zfs"`
	CanResume  bool   `json:"can_resume"`
	CanRawSend bool   `json:"can_raw_send"`
}

// CheckRequest names a target and, for a session's instance, which one.
// With Source set it also checks, before connecting, that the config
// replicates Source to TargetDataset there.
type CheckRequest struct {
	Target        string     `json:"target"`
	At            TargetAddr `json:"at,omitzero"`
	Source        string     `json:"source,omitempty"`
	TargetDataset string     `json:"target_dataset,omitempty"`
	Raw           bool       `json:"raw,omitempty"`
	// AllowPlaintext: as in SendRequest.
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
}

// SnapshotRequest names a snapshot to take.
type SnapshotRequest struct {
	Snapshot  zfsname.Snapshot `json:"snapshot"`
	Recursive bool             `json:"recursive"`
}

// SendRequest asks to bring TargetDataset on Target up to Snapshot.
type SendRequest struct {
	Source        zfsname.Dataset  `json:"source"`
	Snapshot      zfsname.Snapshot `json:"snapshot"`
	Target        string           `json:"target"`
	TargetDataset zfsname.Dataset  `json:"target_dataset"`
	Raw           bool             `json:"raw"`
	// AllowPlaintext lets a natively encrypted source go non-raw (the
	// target then stores plaintext); without it such a source is sent raw.
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
	// At, when set, names the EC2 session's instance (TargetAddr).
	At TargetAddr `json:"at,omitzero"`
}

// SendReport says what was sent.
type SendReport struct {
	Full        bool    `json:"full"`
	From        string  `json:"from,omitempty"`
	To          string  `json:"to"`
	Bytes       int64   `json:"bytes"`
	Resumed     bool    `json:"resumed"`
	AlreadyDone bool    `json:"already_done"`
	Seconds     float64 `json:"seconds"`
	Transport   string  `json:"transport"`
	// Mode says what the target stores: "raw" (the source's ciphertext;
	// the target never has the key), "plaintext" (an encrypted source sent
	// decrypted, allowed by allow_plaintext_on_target) or "plain" (the
	// source is not encrypted).
	Mode string `json:"mode,omitempty"`
}

// Send modes (SendReport.Mode).
const (
	ModeRaw       = "raw"
	ModePlaintext = "plaintext"
	ModePlain     = "plain"
)

// HoldRequest moves a hold tag to Snapshot.
type HoldRequest struct {
	Snapshot zfsname.Snapshot `json:"snapshot"`
	Tag      string           `json:"tag"`
}
