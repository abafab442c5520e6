package contract

import (
	"time"
	"zcloud/cloud/ec2/ec2types"
)

// SessionPlan is what a session does, read from the worker's config (the
// one source of truth, so a Schedule only needs the target's name).
type SessionPlan struct {
	Target            string               `json:"target"`
	Mode              string               `json:"mode"`
	Market            string               `json:"market"`
	InstanceID        string               `json:"instance_id,omitempty"`
	SpotInterruptions int                  `json:"spot_interruptions"`
	Parallelism       int                  `json:"parallelism"`
	Pool              string               `json:"pool"`
	UnlockMethod      string               `json:"unlock_method"`
	SSHTimeout        time.Duration        `json:"ssh_timeout"`
	SpotPollInterval  time.Duration        `json:"spot_poll_interval"`
	Replications      []PlannedReplication `json:"replications"`
	Notify            bool                 `json:"notify"`
	// MountsPool: Pool is a configured pool (pools:) whose current
	// volumes each session attaches; the session holds the pool's
	// operation id (pool/NAME) from before the launch to after the release.
	MountsPool bool `json:"mounts_pool,omitempty"`
	// Wait is how long WaitSSH waits, as planned (SSHTimeout is the sum):
	// a session keeps the waits it started with whatever the config says
	// later. Nil in plans from before it existed.
	Wait *SSHWait `json:"wait,omitempty"`
}

// SSHWait bounds WaitSSH: SSH answering, then the instance's bootstrap
// script (0: the instance runs none).
type SSHWait struct {
	SSH       time.Duration `json:"ssh"`
	Bootstrap time.Duration `json:"bootstrap,omitempty"`
}

// PlannedReplication is one configured replication to this target.
type PlannedReplication struct {
	Source        string `json:"source"`
	TargetDataset string `json:"target_dataset"`
	Raw           bool   `json:"raw"`
	// AllowPlaintext: allow_plaintext_on_target (an encrypted source sent
	// decrypted).
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
}

// LaunchRequest asks for the session's instance number Generation.
type LaunchRequest struct {
	Target string `json:"target"`
	// ClientToken makes the launch idempotent; the workflow derives it
	// from its id and the generation, never from time or the attempt.
	ClientToken string `json:"client_token"`
	// OnDemand forces the on-demand market (after K spot interruptions).
	OnDemand bool `json:"on_demand,omitempty"`
}

// SessionInstance is the instance a session works on and how to reach it.
type SessionInstance struct {
	Instance ec2types.Instance `json:"instance"`
	// At is the SSH address and the pinned public host key.
	At TargetAddr `json:"at"`
	// Volumes are the pool's volumes attached to the instance (a session
	// that mounts a configured pool), in slot order.
	Volumes []string `json:"volumes,omitempty"`
}

// ReleaseRequest names the instance to give back.
type ReleaseRequest struct {
	Target     string `json:"target"`
	InstanceID string `json:"instance_id,omitempty"`
	// ClientToken (launch-terminate): every live instance launched with it
	// is terminated too, and every spot request made with it that is still
	// open or active is cancelled (its instance terminated), so a launch
	// that failed after creating an instance or a spot request leaves
	// nothing running and nothing to be fulfilled later.
	ClientToken string `json:"client_token,omitempty"`
}

// SessionStep addresses the instance for the steps run on it over SSH.
type SessionStep struct {
	Target string     `json:"target"`
	At     TargetAddr `json:"at"`
	// Volumes attached for the pool (SessionInstance.Volumes): the import
	// waits until each one's device node is there.
	Volumes []string `json:"volumes,omitempty"`
	// Wait is the plan's SSHWait (WaitSSH only; nil: the config's).
	Wait *SSHWait `json:"wait,omitempty"`
}

// InstanceUse is how long the session had one instance.
type InstanceUse struct {
	Instance ec2types.Instance `json:"instance"`
	Seconds  float64           `json:"seconds"`
}

// CostRequest asks for the price of a session's instances.
type CostRequest struct {
	Target string        `json:"target"`
	Uses   []InstanceUse `json:"uses"`
}

// CostItem is one instance's share.
type CostItem struct {
	InstanceID string  `json:"instance_id"`
	Type       string  `json:"type"`
	Market     string  `json:"market"`
	Hours      float64 `json:"hours"`
	Price      Price   `json:"price"`
	USD        float64 `json:"usd"`
	Error      string  `json:"error,omitempty"`
}

// CostReport is the session's cost line.
type CostReport struct {
	Items    []CostItem `json:"items"`
	Hours    float64    `json:"hours"`
	TotalUSD float64    `json:"total_usd"`
	// Line is the human summary, e.g. "2 instance(s), 0.420 instance-hours,
	// $0.0210: ..."; prices and amounts keep three significant digits below
	// a cent (ec2.FormatUSD), so a cheap spot price never reads $0.0000, and
	// hours at least three (ec2.FormatHours), with more where needed for
	// each "H h × $P/h = $A" to multiply out (Price.CostTerm).
	Line string `json:"line"`
}

// TargetAddr says which instance of an ec2 target a request is about. The
// worker never takes an address or a host key from a request: a static
// target is reached at its configured host with its configured host key;
// an ec2 target at the address AWS reports for Instance, with the host key
// recorded (and authenticated) at launch by this worker, or pinned in the
// config (mode start-stop). Host and HostKey are what the launch reported,
// for status; a request may repeat them, and they must then be exactly
// what the worker itself found (docs/security.md).
type TargetAddr struct {
	Instance string `json:"instance,omitempty"`
	Host     string `json:"host,omitempty"`
	HostKey  string `json:"host_key,omitempty"`
}

// Price is an hourly instance price and where it came from (ec2.Price's
// fields and JSON).
type Price struct {
	USDPerHour float64 `json:"usd_per_hour"`
	// Source: "spot-history", "spot-max" or "on-demand-list".
	Source string `json:"source"`
}
