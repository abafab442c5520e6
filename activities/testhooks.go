package activities

import (
	"zcloud/cloud/ec2"
	"zcloud/internal/testgate"
	"zcloud/transfer"
	"zcloud/zfsexec"
)

// TestHooks is TEST-ONLY: the one seam through which tests reach into
// activities. Production leaves every field nil, except Gate, which New
// takes from $ZCLOUD_TEST_GATE_DIR (never set in production; nil holds
// nothing).
type TestHooks struct {
	// SessionObserver sees each transfer session (tests prove the key
	// never reaches history, logs or process lists).
	SessionObserver func(transfer.Session)
	// DialTarget replaces the SSH address of a target (tests map an EC2
	// instance address to a local sshd).
	DialTarget func(target string, cfg zfsexec.SSHConfig) (zfsexec.SSHConfig, error)
	// HostKeyGen replaces ec2.GenerateHostKey for launched instances
	// (tests inject the key their sshd serves; see session.go).
	HostKeyGen func() (ec2.HostKey, error)
	// Gate (internal/testgate) holds an activity at a named point so an
	// end-to-end test can act in the middle of it.
	Gate *testgate.Gate
}
