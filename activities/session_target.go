package activities

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/zfsexec"
)

func (a *Activities) targetAt(ctx context.Context, name string, at TargetAddr) (config.Target, *zfsexec.SSH, error) {
	t, ok := a.Config.Targets[name]
	if !ok {
		return t, nil, permanent(ErrTypeConfig, fmt.Errorf("no target named %q in the configuration", name))
	}
	signer, err := zfsexec.LoadSigner(t.SSH.IdentityFile)
	if err != nil {
		return t, nil, permanent(ErrTypeConfig, fmt.Errorf("target %s: %w", name, err))
	}
	sc := zfsexec.SSHConfig{Host: t.SSH.Host, Port: t.SSH.Port, User: t.SSH.User, Signer: signer,
		KnownHostsFile: t.SSH.KnownHostsFile, HostKey: t.SSH.HostKey, ConnectTimeout: t.SSH.ConnectTimeout}
	if at.Host != "" {
		sc.Host = at.Host
	}
	if at.HostKey != "" {
		sc.HostKey, sc.KnownHostsFile = at.HostKey, ""
	}
	if a.DialTarget != nil {
		if sc, err = a.DialTarget(name, sc); err != nil {
			return t, nil, err
		}
	}
	if sc.Host == "" {
		return t, nil, permanent(ErrTypeConfig, fmt.Errorf("target %s: no host (an ec2 target is reached through a session)", name))
	}
	r, err := zfsexec.NewSSH(sc, a.Log.With(zap.String("target", name)))
	if err != nil {
		return t, nil, permanent(ErrTypeConfig, fmt.Errorf("target %s: %w", name, err))
	}
	return t, r, nil
}
