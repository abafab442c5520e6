package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"filippo.io/age"
	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/staging"
	"zcloud/zfsexec"
)

// targetRunner is an SSH runner to a configured target's ssh: settings
// (pinned host key or known_hosts, never trust on first use).
func targetRunner(cfg *config.Config, name string, log *zap.Logger) (*zfsexec.SSH, error) {
	t, ok := cfg.Targets[name]
	if !ok {
		return nil, fmt.Errorf("no target %q in the config (targets: %v)", name, cfg.TargetNames())
	}
	if t.SSH.Host == "" {
		return nil, fmt.Errorf("target %s has no ssh.host (an ec2 target launched per session): restore on the instance while a session holds it, or give the target a host", name)
	}
	signer, err := zfsexec.LoadSigner(t.SSH.IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return zfsexec.NewSSH(zfsexec.SSHConfig{Host: t.SSH.Host, Port: t.SSH.Port, User: t.SSH.User, Signer: signer,
		KnownHostsFile: t.SSH.KnownHostsFile, HostKey: t.SSH.HostKey, ConnectTimeout: t.SSH.ConnectTimeout}, log)
}

// restoreRemote restores sub of the staging copy at dir on the host r
// runs commands on (a replica's mountpoint on a target): it reads the
// copy's bookkeeping with cat and its files as one tar stream, and
// decrypts here, so the private key never reaches that host. It returns
// the staged snapshot's name too.
func restoreRemote(ctx context.Context, r zfsexec.Runner, dir, sub, dest string, ids []age.Identity) (staging.RestoreReport, string, error) {
	var rep staging.RestoreReport
	if !path.IsAbs(dir) {
		return rep, "", fmt.Errorf("the staging copy on %s must be an absolute path, not %q", r.Host(), dir)
	}
	dir = path.Clean(dir)
	cat := func(file string) ([]byte, error) {
		res, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"cat", "--", path.Join(dir, file)}})
		return res.Stdout, err
	}
	state, err := cat(staging.StateFile)
	if err != nil {
		return rep, "", fmt.Errorf("%s:%s is not a staging copy (reading %s): %w", r.Host(), dir, staging.StateFile, err)
	}
	copy, err := staging.OpenRemote(state, func() ([]byte, error) { return cat(staging.NamesFile) }, ids)
	if err != nil {
		return rep, "", err
	}
	at, err := copy.StagedPath(sub)
	if err != nil {
		return rep, "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"tar", "-C", dir, "-cf", "-", at}, Stdout: pw})
		pw.CloseWithError(err)
		sent <- err
	}()
	rep, err = copy.RestoreTar(ctx, pr, sub, dest, ids)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // tar's end padding; then its exit status
	}
	if err != nil {
		if !errors.Is(err, staging.ErrNothingSent) { // else tar has ended: wait for its status
			cancel()
		}
		pr.CloseWithError(err)
		var exit *zfsexec.ExitError
		if terr := <-sent; errors.As(terr, &exit) { // tar's own complaint says more
			err = fmt.Errorf("%w (%v)", err, terr)
		}
		return rep, copy.State.Snapshot, err
	}
	if err := <-sent; err != nil {
		return rep, copy.State.Snapshot, fmt.Errorf("reading %s:%s: %w", r.Host(), dir, err)
	}
	return rep, copy.State.Snapshot, nil
}
