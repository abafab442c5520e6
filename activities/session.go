package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

	"zcloud/bootstrap"
	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/keys"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// The session activities: everything the daily EC2 session (workflows.Session)
// does to the world. Each is idempotent, so a retry after a worker crash
// finds the state the first attempt left and finishes the job.

// TagHostKey is the instance tag holding the public host key injected in
// its user data, so a retried launch that finds the instance the first
// attempt made pins the key that instance really has.
const TagHostKey = "zcloud:host-key"

func (a *Activities) ec2Target(name string) (config.Target, *config.EC2, error) {
	t, err := a.allowTarget(name)
	if err != nil {
		return t, nil, err
	}
	if t.Kind != "ec2" || t.EC2 == nil {
		return t, nil, notAllowed("target", "target %s is not of kind ec2", name)
	}
	return t, t.EC2, nil
}

// PlanSession reads the session for target from the config.
func (a *Activities) PlanSession(ctx context.Context, target string) (contract.SessionPlan, error) {
	_, e, err := a.ec2Target(target)
	if err != nil {
		return contract.SessionPlan{}, err
	}
	p := contract.SessionPlan{Target: target, Mode: e.Mode, Market: e.Market, InstanceID: e.InstanceID,
		SpotInterruptions: e.SpotInterruptions, Parallelism: e.Parallelism, Pool: e.Pool, UnlockMethod: e.Unlock.Method,
		SSHTimeout: e.SSHTimeout, SpotPollInterval: e.SpotPollInterval,
		Notify: a.Config.Notify.SNS != nil || a.Config.Notify.Webhook != nil}
	_, p.MountsPool = a.Config.SessionPool(target)
	p.Wait = sshWait(e)
	// WaitSSH also waits for the instance's bootstrap script.
	p.SSHTimeout = p.Wait.SSH + p.Wait.Bootstrap
	for _, r := range a.Config.ReplicationsTo(target) {
		p.Replications = append(p.Replications, contract.PlannedReplication{Source: r.Source, TargetDataset: r.TargetDataset, Raw: r.Raw,
			AllowPlaintext: r.AllowPlaintextOnTarget})
	}
	if len(p.Replications) == 0 {
		return p, permanent(contract.ErrTypeConfig, fmt.Errorf("no replications to target %s in the configuration", target))
	}
	return p, nil
}

// sessionEC2 is the EC2 client of an ec2 target; its waiters heartbeat.
func (a *Activities) sessionEC2(ctx context.Context, e *config.EC2) (*ec2.Client, error) {
	return newEC2(ctx, "ec2 target", awsclient.Config{Region: e.Region, Endpoint: e.Endpoint}, e.PollInterval, func(progress string) {
		activity.RecordHeartbeat(ctx, contract.Progress{Phase: "ec2", Detail: progress})
	})
}

// LaunchInstance launches (or, on a retry, finds) the session's instance,
// with a host key generated here and injected through cloud-init user
// data: only its public half leaves this activity. It waits until the
// instance runs and attaches the configured EBS volumes.
func (a *Activities) LaunchInstance(ctx context.Context, req contract.LaunchRequest) (contract.SessionInstance, error) {
	t, e, err := a.ec2Target(req.Target)
	if err != nil {
		return contract.SessionInstance{}, err
	}
	if e.Mode != config.ModeLaunchTerminate {
		return contract.SessionInstance{}, permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: mode is %s, not launch-terminate", req.Target, e.Mode))
	}
	c, err := a.sessionEC2(ctx, e)
	if err != nil {
		return contract.SessionInstance{}, err
	}
	gen := a.HostKeyGen
	if gen == nil {
		gen = ec2.GenerateHostKey
	}
	hk, err := gen()
	if err != nil {
		return contract.SessionInstance{}, err
	}
	signer, err := zfsexec.LoadSigner(t.SSH.IdentityFile)
	if err != nil {
		return contract.SessionInstance{}, permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: %w", req.Target, err))
	}
	userData, err := launchUserData(e, hk, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))))
	if err != nil {
		return contract.SessionInstance{}, permanent(contract.ErrTypeConfig, fmt.Errorf("target %s: %w", req.Target, err))
	}
	tags := maps.Clone(e.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[TagHostKey] = hk.Public
	tags[TagTarget] = req.Target
	if tags[TagLaunch], err = launchTag(t, req.Target, req.ClientToken, hk.Public); err != nil {
		return contract.SessionInstance{}, err
	}
	spec := ec2.LaunchSpec{AMI: e.AMI, InstanceType: e.InstanceType, SubnetID: e.SubnetID, SecurityGroupIDs: e.SecurityGroupIDs,
		KeyName: e.KeyName, Tags: tags, UserData: userData, Market: ec2types.Market(e.Market), SpotMaxPrice: e.SpotMaxPrice,
		FallbackInstanceTypes: e.FallbackInstanceTypes, FallbackToOnDemand: e.FallbackToOnDemand, ClientToken: req.ClientToken}
	if req.OnDemand {
		spec.Market, spec.SpotMaxPrice = ec2types.OnDemand, ""
	}
	pool, mounts := a.Config.SessionPool(req.Target)
	if mounts {
		// Check the pool's volumes before anything is launched, and
		// launch where they are.
		vs, err := currentVolumes(ctx, c, pool.Name)
		if err != nil {
			return contract.SessionInstance{}, ec2Err(err)
		}
		if _, err := oneZone(pool, vs); err != nil {
			return contract.SessionInstance{}, err
		}
		if spec.SubnetID == "" {
			spec.AvailabilityZone = pool.AvailabilityZone
		}
	}
	inst, err := c.Launch(ctx, spec)
	if err != nil {
		return contract.SessionInstance{}, ec2Err(err)
	}
	log := a.Log.With(zap.String("target", req.Target), zap.String("instance", inst.ID))
	// The key to pin is the one in the instance's user data: a retry that
	// found the first attempt's instance generated a key nobody uses.
	// Its launch record must be this worker's own (see TagLaunch).
	pinned, err := launchedBy(t, req.Target, inst)
	if err != nil {
		return contract.SessionInstance{}, err
	}
	log.Info("launched", zap.String("type", inst.Type), zap.String("market", string(inst.Market)), zap.Bool("adopted", pinned != hk.Public))
	if inst, err = c.WaitRunning(ctx, inst.ID); err != nil {
		return contract.SessionInstance{}, ec2Err(err)
	}
	out := contract.SessionInstance{Instance: inst, At: contract.TargetAddr{Instance: inst.ID, Host: inst.Address(), HostKey: pinned}}
	if mounts {
		if out.Volumes, err = attachPoolVolumes(ctx, c, pool, inst, nil); err != nil {
			return contract.SessionInstance{}, err
		}
		log.Info("attached the pool's volumes", zap.String("pool", pool.Name), zap.Strings("volumes", out.Volumes))
	}
	return out, nil
}

// launchUserData is a launched instance's cloud-config: the pinned host
// key, the worker's SSH key, and the bootstrap script run at first boot.
func launchUserData(e *config.EC2, hk ec2.HostKey, authorizedKey string) (string, error) {
	ci := ec2.CloudInit{HostKey: hk, AuthorizedKeys: []string{authorizedKey}}
	if !e.Bootstrap.Skip {
		script, err := bootstrap.Script(e.Bootstrap.Options(e.Unlock.Method == "luks"))
		if err != nil {
			return "", err
		}
		ci.Files = []ec2.File{{Path: bootstrap.InstallPath, Mode: "0755", Content: script}}
		ci.RunCmd = [][]string{{bootstrap.InstallPath}}
	}
	return ci.UserData()
}

// StartInstance starts the configured existing instance (mode start-stop)
// and waits until it runs. Its host key is the one pinned in the config.
func (a *Activities) StartInstance(ctx context.Context, target string) (contract.SessionInstance, error) {
	t, e, err := a.ec2Target(target)
	if err != nil {
		return contract.SessionInstance{}, err
	}
	c, err := a.sessionEC2(ctx, e)
	if err != nil {
		return contract.SessionInstance{}, err
	}
	if _, err := c.Start(ctx, e.InstanceID); err != nil {
		return contract.SessionInstance{}, ec2Err(err)
	}
	inst, err := c.WaitRunning(ctx, e.InstanceID)
	if err != nil {
		return contract.SessionInstance{}, ec2Err(err)
	}
	host := t.SSH.Host
	if host == "" {
		host = inst.Address()
	}
	return contract.SessionInstance{Instance: inst, At: contract.TargetAddr{Instance: inst.ID, Host: host}}, nil
}

// ReleaseInstance detaches the configured volumes and terminates a
// launched instance, or stops a started one. Releasing a released (or
// vanished) instance succeeds, so it is safe as a compensation.
func (a *Activities) ReleaseInstance(ctx context.Context, req contract.ReleaseRequest) error {
	t, e, err := a.ec2Target(req.Target)
	if err != nil {
		return err
	}
	c, err := a.sessionEC2(ctx, e)
	if err != nil {
		return err
	}
	if e.Mode == config.ModeStartStop {
		if req.InstanceID == "" {
			return nil
		}
		if req.InstanceID != e.InstanceID {
			return notAllowed("instance_id", "target %s uses instance %s from the configuration", req.Target, e.InstanceID)
		}
		if _, err := c.Stop(ctx, req.InstanceID); err != nil && !ec2.IsNotFound(err) {
			return ec2Err(err)
		}
		return nil
	}
	// The pool was exported (or the instance is being torn down after a
	// failure): a forced detach on later attempts frees the volumes for the
	// next instance even if the OS does not answer.
	force := activity.GetInfo(ctx).Attempt > 2
	detach := func(ctx context.Context, id string) error {
		if p, ok := a.Config.SessionPool(req.Target); ok {
			return detachPoolVolumes(ctx, c, p.Name, id, force)
		}
		return nil
	}
	log := a.Log.With(zap.String("target", req.Target))
	if req.InstanceID != "" {
		// Only an instance this worker launched for the target is ever
		// terminated; one already gone is released.
		inst, err := c.DescribeInstance(ctx, req.InstanceID)
		if err != nil && !ec2.IsNotFound(err) {
			return ec2Err(err)
		}
		if err == nil && inst.State != ec2.StateTerminated {
			if _, err := launchedBy(t, req.Target, inst); err != nil {
				return err
			}
		}
	}
	if req.InstanceID != "" {
		if err := detach(ctx, req.InstanceID); err != nil {
			return ec2Err(err)
		}
		if err := c.Terminate(ctx, req.InstanceID); err != nil {
			return ec2Err(err)
		}
		log.Info("terminated", zap.String("instance", req.InstanceID))
	}
	if req.ClientToken != "" {
		if err := a.allowLaunchToken(ctx, c, t, req.Target, req.ClientToken); err != nil {
			return err
		}
		// What else the launch made: an instance it never reported (the
		// launch failed half way), and spot requests still open or active,
		// with the instance of a request whose instance was never tagged
		// (the worker died right after RequestSpotInstances).
		done, err := c.CleanupLaunch(ctx, req.ClientToken, detach)
		for _, r := range done.CancelledRequests {
			log.Info("cancelled spot request", zap.String("spot_request", r))
		}
		for _, id := range done.Terminated {
			log.Info("terminated", zap.String("instance", id))
		}
		if err != nil {
			return ec2Err(err)
		}
	}
	return nil
}

// waitsBootstrap says whether a session's instance runs the bootstrap
// script (a launched one, unless the target skips it).
func waitsBootstrap(e *config.EC2) bool {
	return e.Mode == config.ModeLaunchTerminate && !e.Bootstrap.Skip
}

// sshWait is what WaitSSH waits for, from the target's config.
func sshWait(e *config.EC2) *contract.SSHWait {
	w := &contract.SSHWait{SSH: e.SSHTimeout}
	if waitsBootstrap(e) {
		w.Bootstrap = e.Bootstrap.Timeout
	}
	return w
}

// WaitSSH waits until the instance answers SSH with the pinned host key,
// up to the target's ssh_timeout, and then (a launched instance) until its
// bootstrap script has finished, up to bootstrap.timeout more. A different
// host key, or a bootstrap that failed, is refused at once.
func (a *Activities) WaitSSH(ctx context.Context, req contract.SessionStep) error {
	_, e, err := a.ec2Target(req.Target)
	if err != nil {
		return err
	}
	// The waits the session planned with (the activity's timeout was set
	// from them); a step from an older plan has none: the config's.
	w := req.Wait
	if w == nil {
		w = sshWait(e)
	}
	deadline := time.Now().Add(w.SSH)
	var last error
	for try := 1; ; try++ {
		_, r, err := a.targetAt(ctx, req.Target, req.At)
		if err != nil {
			return err
		}
		_, err = r.Run(ctx, zfsexec.Cmd{Argv: []string{"true"}})
		if err == nil && w.Bootstrap > 0 {
			err = waitBootstrap(ctx, r, w.Bootstrap)
			var ae *temporal.ApplicationError
			if err == nil || errors.As(err, &ae) || ctx.Err() != nil {
				r.Close()
				return err
			}
			// The connection broke (the instance rebooted?): wait for SSH again.
		}
		host := r.Host()
		r.Close()
		var hk *zfsexec.HostKeyMismatchError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &hk):
			return permanent(contract.ErrTypeHostKey, err)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		last = err
		activity.RecordHeartbeat(ctx, contract.Progress{Phase: "wait-ssh", Detail: fmt.Sprintf("try %d: %v", try, err)})
		if time.Now().After(deadline) {
			return permanent(contract.ErrTypeSSHReady, fmt.Errorf("%s: SSH not ready after %s: %v", host, w.SSH, last))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(2*time.Second, w.SSH/4)):
		}
	}
}

// waitBootstrap polls the bootstrap script's status file on the instance
// until it says ok (done) or failed (a permanent error with its reason).
func waitBootstrap(ctx context.Context, r zfsexec.Runner, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for try := 1; ; try++ {
		// cat fails while the file is missing: the script still runs.
		res, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"cat", bootstrap.StatusPath}})
		status := strings.TrimSpace(string(res.Stdout))
		var ee *zfsexec.ExitError
		switch {
		case err == nil && status == "ok":
			return nil
		case err == nil && status != "":
			return permanent(contract.ErrTypeBootstrap, fmt.Errorf("%s: the instance's bootstrap %s (its log is in the instance's console output / cloud-init log)", r.Host(), status))
		case err != nil && !errors.As(err, &ee):
			return err // the connection broke
		}
		activity.RecordHeartbeat(ctx, contract.Progress{Phase: "wait-bootstrap", Detail: fmt.Sprintf("try %d: %s not written yet", try, bootstrap.StatusPath)})
		if time.Now().After(deadline) {
			return permanent(contract.ErrTypeBootstrap, fmt.Errorf("%s: bootstrap not finished after %s (raise bootstrap.timeout, or prepare the image: docs/target-image.md)", r.Host(), timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// sessionRunner is an SSH runner to the session's instance.
func (a *Activities) sessionRunner(ctx context.Context, req contract.SessionStep) (*config.EC2, *zfsexec.SSH, error) {
	_, e, err := a.ec2Target(req.Target)
	if err != nil {
		return nil, nil, err
	}
	_, r, err := a.targetAt(ctx, req.Target, req.At)
	return e, r, err
}

// Unlock opens the pool's encryption with the key from the worker's key
// source, fetched here and written only to the remote command's stdin:
// zfs load-key -L prompt (method zfs, after import), cryptsetup open
// --key-file=- per device (luks), or the configured command (command).
// Already unlocked is success. A refused key is a permanent error.
func (a *Activities) Unlock(ctx context.Context, req contract.SessionStep) error {
	e, r, err := a.sessionRunner(ctx, req)
	if err != nil {
		return err
	}
	defer r.Close()
	u := e.Unlock
	if u.Method == "none" {
		return nil
	}
	key, err := a.Keys.Get(ctx, u.Key)
	if err != nil {
		return permanent(contract.ErrTypeConfig, fmt.Errorf("unlock %s: %w", req.Target, err))
	}
	defer clear(key)
	switch u.Method {
	case "zfs":
		caps, err := a.capabilities(ctx, r)
		if err != nil {
			return classify(err)
		}
		z := zfsexec.ZFS{R: r, Caps: caps}
		ds, err := zfsname.ParseDataset(u.Dataset)
		if err != nil {
			return permanent(contract.ErrTypeInvalidName, err)
		}
		if caps.NativeEncryption {
			if st, err := z.GetOne(ctx, ds, "keystatus"); err == nil && st == "available" {
				return nil
			}
		}
		if err := z.LoadKey(ctx, ds, bytes.NewReader(key)); err != nil {
			return unlockErr(withoutKey(err, key))
		}
	case "luks":
		cs := zfsexec.Cryptsetup{R: r}
		for _, d := range u.Devices {
			name := zfsname.MapperName(d.Name)
			if open, err := cs.IsOpen(ctx, name); err != nil {
				return classify(err)
			} else if open {
				continue
			}
			dev, err := zfsname.ParseDevice(d.Device)
			if err != nil {
				return permanent(contract.ErrTypeInvalidName, err)
			}
			if err := cs.Open(ctx, dev, name, key); err != nil {
				return unlockErr(withoutKey(err, key))
			}
		}
	case "command":
		if _, err := r.Run(ctx, zfsexec.Cmd{Argv: u.Command, Stdin: bytes.NewReader(key)}); err != nil {
			err = withoutKey(err, key)
			var ee *zfsexec.ExitError
			if errors.As(err, &ee) {
				return permanent(contract.ErrTypeKeyIncorrect, fmt.Errorf("unlock command refused the key: %w", err))
			}
			return err
		}
	default:
		return permanent(contract.ErrTypeConfig, fmt.Errorf("unlock method %q", u.Method))
	}
	a.Log.Info("unlocked", zap.String("target", req.Target), zap.String("method", u.Method))
	return nil
}

// withoutKey withholds every line of a failed command's error output that
// carries the key it was given on stdin (a command may echo its input),
// before the error can reach a log or the workflow history.
func withoutKey(err error, key []byte) error {
	var ee *zfsexec.ExitError
	if errors.As(err, &ee) {
		ee.Stderr = keys.Redact(ee.Stderr, key)
	}
	return err
}

// unlockErr: a refused key is permanent; cryptsetup says so with exit 2.
func unlockErr(err error) error {
	var ee *zfsexec.ExitError
	if errors.As(err, &ee) && ee.Kind == zfsexec.ErrKeyIncorrect {
		return permanent(contract.ErrTypeKeyIncorrect, err)
	}
	if zfsexec.IsUnsupported(err) {
		return permanent(contract.ErrTypeUnsupported, err)
	}
	return classify(err)
}

// sessionZpool is zpool on the session's instance, its ZFS detected.
func (a *Activities) sessionZpool(ctx context.Context, r zfsexec.Runner, name string) (zfsexec.Zpool, zfsname.Pool, error) {
	pool, err := zfsname.ParsePool(name)
	if err != nil {
		return zfsexec.Zpool{}, pool, permanent(contract.ErrTypeInvalidName, err)
	}
	caps, err := a.capabilities(ctx, r)
	if err != nil {
		return zfsexec.Zpool{}, pool, classify(err)
	}
	return zfsexec.Zpool{R: r, Caps: caps}, pool, nil
}

// ImportPool imports the session's pool (searching pool_device_dirs, or
// the mounted pool's device_dir); an imported pool is success.
func (a *Activities) ImportPool(ctx context.Context, req contract.SessionStep) error {
	e, r, err := a.sessionRunner(ctx, req)
	if err != nil {
		return err
	}
	defer r.Close()
	zp, pool, err := a.sessionZpool(ctx, r, e.Pool)
	if err != nil {
		return err
	}
	var o zfsexec.ImportOptions
	if p, ok := a.Config.SessionPool(req.Target); ok {
		// Import only with every attached volume's device there: a pool
		// imported with one missing runs degraded.
		if err := waitDevices(ctx, r, p, req.Volumes, 5*time.Minute, nil); err != nil {
			return err
		}
		if len(e.PoolDeviceDirs) == 0 {
			o.Dirs = append(o.Dirs, importDir(p))
		}
	}
	for _, d := range e.PoolDeviceDirs {
		dev, err := zfsname.ParseDevice(d)
		if err != nil {
			return permanent(contract.ErrTypeInvalidName, err)
		}
		o.Dirs = append(o.Dirs, dev)
	}
	imported, err := a.importPool(ctx, zp, pool, o)
	if err != nil {
		// Freshly attached volumes can take a moment to show up; after a
		// few tries a missing pool is a clear, permanent error.
		if errors.Is(err, zfsexec.ErrNoSuchPool) && activity.GetInfo(ctx).Attempt >= 3 {
			return permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s not found on %s: %w", pool, r.Host(), err))
		}
		return classify(err)
	}
	if !imported {
		return nil
	}
	a.Log.Info("imported", zap.String("target", req.Target), zap.String("pool", pool.String()))
	return a.Gate.Reached(ctx, "session-imported") // test-only
}

// ExportPool exports the session's pool; not imported is success. From the
// fourth attempt on it forces the export (a receive killed mid-stream can
// leave a dataset busy for a while).
func (a *Activities) ExportPool(ctx context.Context, req contract.SessionStep) error {
	e, r, err := a.sessionRunner(ctx, req)
	if err != nil {
		return err
	}
	defer r.Close()
	zp, pool, err := a.sessionZpool(ctx, r, e.Pool)
	if err != nil {
		return err
	}
	exported, err := exportPool(ctx, zp, pool, activity.GetInfo(ctx).Attempt > 3)
	if err != nil {
		return classify(err)
	}
	if exported {
		a.Log.Info("exported", zap.String("target", req.Target), zap.String("pool", pool.String()))
	}
	return nil
}

// Lock undoes Unlock after the export: unload the key if the pool is still
// imported (export already forgets it), close the LUKS devices, or run the
// lock command.
func (a *Activities) Lock(ctx context.Context, req contract.SessionStep) error {
	e, r, err := a.sessionRunner(ctx, req)
	if err != nil {
		return err
	}
	defer r.Close()
	u := e.Unlock
	switch u.Method {
	case "zfs":
		zp, pool, err := a.sessionZpool(ctx, r, e.Pool)
		if err != nil {
			return err
		}
		if _, imported, err := poolStatus(ctx, zp, pool); err != nil || !imported {
			return classify(err)
		}
		ds, _ := zfsname.ParseDataset(u.Dataset)
		z := zfsexec.ZFS{R: r, Caps: zp.Caps}
		if st, err := z.GetOne(ctx, ds, "keystatus"); err == nil && st == "unavailable" {
			return nil
		}
		if err := z.UnloadKey(ctx, ds); err != nil {
			return classify(err)
		}
	case "luks":
		cs := zfsexec.Cryptsetup{R: r}
		for _, d := range u.Devices {
			name := zfsname.MapperName(d.Name)
			if open, err := cs.IsOpen(ctx, name); err != nil {
				return classify(err)
			} else if !open {
				continue
			}
			if err := cs.Close(ctx, name); err != nil {
				return classify(err)
			}
		}
	case "command":
		if len(u.LockCommand) > 0 {
			if _, err := r.Run(ctx, zfsexec.Cmd{Argv: u.LockCommand}); err != nil {
				return classify(err)
			}
		}
	}
	return nil
}

// spotPoll fetches the spot notice from the instance's IMDS with IMDSv2,
// run on the instance over SSH (the controller cannot reach its IMDS). The
// session token travels on curl's stdin (-H @-), not its argv. It prints
// the document and then the HTTP status on the last line.
const spotPoll = `set -u
base=$1
tok=$(curl -sS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$base/latest/api/token") || exit 3
printf 'X-aws-ec2-metadata-token: %s\n' "$tok" | curl -sS -m 5 -H @- -w '\n%{http_code}' "$base/latest/meta-data/spot/instance-action" || exit 3`

// parseSpotPoll reads spotPoll's output: nil when there is no notice.
func parseSpotPoll(out []byte) (*ec2types.SpotNotice, error) {
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	code, err := strconv.Atoi(strings.TrimSpace(s[i+1:]))
	if err != nil {
		return nil, fmt.Errorf("spot poll: unexpected output %q", s)
	}
	switch code {
	case 404:
		return nil, nil
	case 200:
		if i < 0 {
			return nil, errors.New("spot poll: empty notice")
		}
		return ec2.ParseSpotNotice([]byte(s[:i]))
	}
	return nil, fmt.Errorf("spot poll: IMDS answered HTTP %d", code)
}

// WatchSpot polls the instance's IMDS for a spot interruption notice every
// spot_poll_interval, heartbeating, and returns the notice when one
// appears. It runs beside the replications and is cancelled when they end.
// Failed polls (the instance busy, a dropped connection) are retried: a
// dead instance shows up as failed replications, and a dead worker as a
// heartbeat timeout.
func (a *Activities) WatchSpot(ctx context.Context, req contract.SessionStep) (*ec2types.SpotNotice, error) {
	e, r, err := a.sessionRunner(ctx, req)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	log := a.Log.With(zap.String("target", req.Target))
	for polls := 1; ; polls++ {
		res, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"sh", "-c", spotPoll, "sh", e.IMDSEndpoint}})
		var n *ec2types.SpotNotice
		if err == nil {
			n, err = parseSpotPoll(res.Stdout)
		}
		if n != nil {
			log.Warn("spot interruption notice", zap.String("action", n.Action), zap.Time("time", n.Time))
			return n, nil
		}
		detail := "no notice"
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			detail = err.Error()
			log.Debug("spot poll failed", zap.Error(err))
		}
		activity.RecordHeartbeat(ctx, contract.Progress{Phase: "spot-watch", Detail: fmt.Sprintf("poll %d: %s", polls, detail)})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.SpotPollInterval):
		}
	}
}

// SessionCost prices each instance (spot: the latest spot price, else the
// max price; on-demand: the configured list price) times its hours.
func (a *Activities) SessionCost(ctx context.Context, req contract.CostRequest) (contract.CostReport, error) {
	_, e, err := a.ec2Target(req.Target)
	if err != nil {
		return contract.CostReport{}, err
	}
	c, err := a.sessionEC2(ctx, e)
	if err != nil {
		return contract.CostReport{}, err
	}
	var rep contract.CostReport
	var parts []string
	unknown := false
	for _, u := range req.Uses {
		it := contract.CostItem{InstanceID: u.Instance.ID, Type: u.Instance.Type, Market: string(u.Instance.Market), Hours: u.Seconds / 3600}
		rep.Hours += it.Hours
		p, err := c.InstancePrice(ctx, u.Instance, ec2.PriceTable(e.Prices), e.SpotMaxPrice)
		if err != nil {
			if ec2.IsRetryable(err) {
				return contract.CostReport{}, err
			}
			it.Error, unknown = err.Error(), true
			parts = append(parts, fmt.Sprintf("%s %s %s %s h × unknown price", it.InstanceID, it.Type, it.Market, ec2.FormatHours(it.Hours)))
		} else {
			it.Price, it.USD = contract.Price(p), p.USDPerHour*it.Hours
			rep.TotalUSD += it.USD
			parts = append(parts, fmt.Sprintf("%s %s %s %s", it.InstanceID, it.Type, it.Market, p.CostTerm(it.Hours)))
		}
		rep.Items = append(rep.Items, it)
	}
	total := ec2.FormatUSD(rep.TotalUSD)
	if unknown {
		total += " + unknown (add the instance type to ec2.prices)"
	}
	rep.Line = fmt.Sprintf("%d instance(s), %s instance-hours, %s: %s", len(req.Uses), ec2.FormatHours(rep.Hours), total, strings.Join(parts, "; "))
	return rep, nil
}
