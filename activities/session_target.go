package activities

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/zfsexec"
)

// TagLaunch authenticates a launched instance's record: the launch's
// client token and an HMAC, under a key derived from the target's SSH
// identity (which only the worker holds), of the target, the token and the
// injected public host key (TagHostKey). An instance carrying it was
// launched by this worker for this target with that host key; nobody
// without the identity can forge it, not even with the right to tag
// instances.
const TagLaunch = "zcloud:launch"

// TagTarget names the target an instance was launched for.
const TagTarget = "zcloud:target"

// launchMAC is the HMAC of a launch record (see TagLaunch).
func launchMAC(identityFile, target, token, hostKey string) (string, error) {
	b, err := os.ReadFile(identityFile)
	if err != nil {
		return "", fmt.Errorf("read identity file: %w", err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	clear(b)
	if err != nil {
		return "", fmt.Errorf("parse identity file %s: %w", identityFile, err)
	}
	if k, ok := raw.(*ed25519.PrivateKey); ok {
		raw = *k
	}
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	if err != nil {
		return "", fmt.Errorf("identity file %s: %w", identityFile, err)
	}
	kdf := hmac.New(sha256.New, []byte("zcloud launch record v1"))
	kdf.Write(der)
	clear(der)
	m := hmac.New(sha256.New, kdf.Sum(nil))
	m.Write([]byte(target + "\n" + token + "\n" + strings.TrimSpace(hostKey)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// launchTag is TagLaunch's value for a launch.
func launchTag(t config.Target, target, token, hostKey string) (string, error) {
	mac, err := launchMAC(t.SSH.IdentityFile, target, token, hostKey)
	if err != nil {
		return "", permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: %w", target, err))
	}
	return token + " " + mac, nil
}

// launchedBy checks inst's launch record: launched by this worker for
// target. It returns the host key injected at that launch.
func launchedBy(t config.Target, target string, inst ec2types.Instance) (string, error) {
	rec, key := inst.Tags[TagLaunch], inst.Tags[TagHostKey]
	token, _, _ := strings.Cut(rec, " ")
	if inst.Tags[TagTarget] != target || rec == "" || key == "" {
		return "", notAllowed("target_instance", "instance %s was not launched by this worker for target %s", inst.ID, target)
	}
	want, err := launchTag(t, target, token, key)
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(rec), []byte(want)) {
		return "", notAllowed("target_instance", "instance %s carries a launch record this worker did not make (target %s)", inst.ID, target)
	}
	return key, nil
}

// targetAt returns the configured target and an SSH runner to it, at the
// address and with the host key the config and the worker's own launch
// record say; at only selects the instance of an ec2 target.
func (a *Activities) targetAt(ctx context.Context, name string, at contract.TargetAddr) (config.Target, *zfsexec.SSH, error) {
	t, err := a.allowTarget(name)
	if err != nil {
		return t, nil, err
	}
	signer, err := zfsexec.LoadSigner(t.SSH.IdentityFile)
	if err != nil {
		return t, nil, permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: %w", name, err))
	}
	sc := zfsexec.SSHConfig{Host: t.SSH.Host, Port: t.SSH.Port, User: t.SSH.User, Signer: signer,
		KnownHostsFile: t.SSH.KnownHostsFile, HostKey: t.SSH.HostKey, ConnectTimeout: t.SSH.ConnectTimeout}
	if t.Kind == "ec2" && t.EC2 != nil {
		if sc, err = a.instanceAddr(ctx, name, t, at, sc); err != nil {
			return t, nil, err
		}
	} else {
		switch {
		case at.Host != "":
			return t, nil, notAllowed("target_host", "a static target's address comes from the config")
		case at.HostKey != "":
			return t, nil, notAllowed("target_host_key", "a static target's host key comes from the config")
		case at.Instance != "":
			return t, nil, notAllowed("target_instance", "target %s is static: it has no instance", name)
		}
	}
	if a.DialTarget != nil {
		if sc, err = a.DialTarget(name, sc); err != nil {
			return t, nil, err
		}
	}
	r, err := zfsexec.NewSSH(sc, a.Log.With(zap.String("target", name)))
	if err != nil {
		return t, nil, permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: %w", name, err))
	}
	return t, r, nil
}

// instanceAddr finds where an ec2 target's instance is, asking AWS itself:
// the configured instance (start-stop: its configured host or AWS's
// address, the configured host key), or one this worker launched for the
// target (launch-terminate: AWS's address, the host key of its launch
// record). A host or host key in the request must match what was found.
func (a *Activities) instanceAddr(ctx context.Context, name string, t config.Target, at contract.TargetAddr, sc zfsexec.SSHConfig) (zfsexec.SSHConfig, error) {
	e := t.EC2
	id := at.Instance
	switch {
	case e.Mode == config.ModeStartStop && id != "" && id != e.InstanceID:
		return sc, notAllowed("target_instance", "target %s uses instance %s from the configuration", name, e.InstanceID)
	case e.Mode == config.ModeStartStop:
		id = e.InstanceID
	case id == "":
		return sc, notAllowed("target_instance", "required: target %s is reached at an instance this worker launched for it", name)
	}
	c, err := a.sessionEC2(ctx, e)
	if err != nil {
		return sc, err
	}
	inst, err := c.DescribeInstance(ctx, id)
	if ec2.IsNotFound(err) {
		return sc, notAllowed("target_instance", "no instance %s", id)
	}
	if err != nil {
		return sc, ec2Err(err)
	}
	if e.Mode != config.ModeStartStop {
		if sc.HostKey, err = launchedBy(t, name, inst); err != nil {
			return sc, err
		}
		sc.KnownHostsFile = ""
	}
	if sc.Host == "" || e.Mode != config.ModeStartStop {
		sc.Host = inst.Address()
	}
	if sc.Host == "" {
		return sc, permanent(contract.ErrTypeUnreachable, fmt.Errorf("target %s: instance %s has no address (state %s)", name, id, inst.State))
	}
	if at.Host != "" && at.Host != sc.Host {
		return sc, notAllowed("target_host", "instance %s of target %s is at %s", id, name, sc.Host)
	}
	if at.HostKey != "" && strings.TrimSpace(at.HostKey) != strings.TrimSpace(sc.HostKey) {
		return sc, notAllowed("target_host_key", "it differs from the key recorded for instance %s", id)
	}
	return sc, nil
}
