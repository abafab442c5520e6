package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"zcloud/activities"
	"zcloud/cli"
	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
	"zcloud/zfsexec"
)

// sessEnv is a session test's world: the e2e env (Temporal, sshd, a source
// pool and the "instance's" pool, exported until a session imports it),
// moto as EC2, and a key in the worker's key source.
type sessEnv struct {
	*env
	moto    *testenv.Moto
	tag     string // every instance of this test carries zcloud-test=tag
	keyDir  string
	key     string // the pool key (hex text) in keyDir/pool-key
	unlock  string // the key-check script on the "instance"
	logs    *syncBuffer
	sshPort int // where the seam maps instance addresses (the sshd, or a closed port)
}

// sessOpts vary the config per test.
type sessOpts struct {
	ami            string
	market         string
	spotK          int
	imds           string
	sshTimeout     string
	bwlimit        int64
	wrongKeyOnDisk bool
	subnet         string // subnet_id
	startStop      string // mode start-stop of this instance (host key pinned in ssh:)
	webhook        string // notify.webhook.url
	keyCommand     string // keys.command instead of keys.dir
}

func newSessEnv(t *testing.T) *sessEnv {
	t.Helper()
	s := &sessEnv{env: newEnv(t), moto: testenv.SharedMoto(t), tag: testenv.RandomName("t-"), logs: &syncBuffer{}}
	s.sshPort = s.sshd.Port
	s.keyDir = t.TempDir()
	b := make([]byte, 32)
	rand.Read(b)
	s.key = hex.EncodeToString(b)
	if err := os.WriteFile(filepath.Join(s.keyDir, "pool-key"), []byte(s.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The key check the "instance" runs as its unlock step: the key comes
	// on stdin only and is compared by hash; a wrong key fails.
	s.unlock = filepath.Join(t.TempDir(), "zcloud-unlock")
	script := "#!/bin/sh\ngot=$(sha256sum | cut -d' ' -f1)\nif [ \"$got\" != \"$1\" ]; then echo 'key check failed: wrong key' >&2; exit 1; fi\n"
	if err := os.WriteFile(s.unlock, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Two source datasets, and the instance's pool exported as it is
	// between sessions; it is imported again before the pool is destroyed.
	for i, ds := range []string{"data1", "data2"} {
		testenv.MustZFS(t, "zfs", "create", s.src.Pool.String()+"/"+ds)
		writeTree(t, "/"+s.src.Pool.String()+"/"+ds, uint64(40+i), 10, 512<<10)
	}
	t.Cleanup(func() { s.importInstancePool() })
	return s
}

func (s *sessEnv) exportInstancePool() {
	s.t.Helper()
	for i := 0; ; i++ {
		out, err := exec.Command("zpool", "export", s.dst.Pool.String()).CombinedOutput()
		if err == nil {
			return
		}
		if i > 20 {
			s.t.Fatalf("zpool export: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (s *sessEnv) instancePoolImported() bool {
	return exec.Command("zpool", "list", "-H", s.dst.Pool.String()).Run() == nil
}

func (s *sessEnv) importInstancePool() {
	if s.instancePoolImported() {
		return
	}
	if out, err := exec.Command("zpool", "import", "-d", s.dst.Dir, s.dst.Pool.String()).CombinedOutput(); err != nil {
		s.t.Logf("zpool import: %v\n%s", err, out)
	}
}

// sessionConfig writes and parses the config: target "nightly" of kind
// ec2 on moto, unlocked by the key check, receiving into the instance's pool.
func (s *sessEnv) sessionConfig(o sessOpts) *config.Config {
	s.t.Helper()
	if o.ami == "" {
		o.ami = "ami-0123456789abcdef0"
	}
	if o.market == "" {
		o.market = "on-demand"
	}
	if o.sshTimeout == "" {
		o.sshTimeout = "30s"
	}
	if o.imds == "" {
		o.imds = "http://127.0.0.1:1"
	}
	if o.spotK == 0 {
		o.spotK = 1
	}
	bin, err := zcloudBin()
	if err != nil {
		s.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(s.key))
	want := hex.EncodeToString(sum[:])
	if o.wrongKeyOnDisk {
		if err := os.WriteFile(filepath.Join(s.keyDir, "pool-key"), []byte("not-the-pool-key-"+s.key[:8]), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	// The "instance" is this machine's sshd, not a fresh image: no bootstrap
	// script runs there (vmtests runs it in the OpenZFS VM).
	launch := fmt.Sprintf("ami: %s\n      instance_type: t3.micro\n      bootstrap: {skip: true}", o.ami)
	sshExtra := ""
	if o.startStop != "" {
		launch = "mode: start-stop\n      instance_id: " + o.startStop
		sshExtra = fmt.Sprintf("host_key: %q, ", s.sshd.HostKey)
	}
	if o.subnet != "" {
		launch += "\n      subnet_id: " + o.subnet
	}
	keysCfg := fmt.Sprintf("{dir: %q}", s.keyDir)
	if o.keyCommand != "" {
		keysCfg = fmt.Sprintf("{command: [%q]}", o.keyCommand)
	}
	notifyCfg := ""
	if o.webhook != "" {
		notifyCfg = fmt.Sprintf("notify: {webhook: {url: %q}}", o.webhook)
	}
	spot := ""
	if o.market == "spot" {
		spot = fmt.Sprintf("spot_max_price: \"0.05\"\n      spot_interruptions: %d", o.spotK)
	}
	pool := s.dst.Pool.String()
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: debug}
receiver_binary: %q
keys: %s
%s
targets:
  nightly:
    kind: ec2
    transport: parallel
    bandwidth_limit: %d
    receiver_path: %q
    ssh: {%suser: %s, identity_file: %q, connect_timeout: 5s}
    ec2:
      region: us-east-1
      endpoint: %q
      %s
      tags: {zcloud-test: %s}
      market: %s
      %s
      pool: %s
      pool_device_dirs: [%q]
      unlock: {method: command, key: pool-key, command: [%q, %s]}
      prices: {t3.micro: 0.0104}
      imds_endpoint: %q
      spot_poll_interval: 300ms
      poll_interval: 100ms
      ssh_timeout: %s
      parallelism: 2
      schedule: {time: "02:30", time_zone: Europe/London}
replications:
  - {source: %s/data1, target: nightly, target_dataset: %s/backup/data1}
  - {source: %s/data2, target: nightly, target_dataset: %s/backup/data2}
`, s.temporal.HostPort, s.temporal.Namespace, s.queue, bin, keysCfg, notifyCfg, o.bwlimit, filepath.Join(s.t.TempDir(), "bin", "zcloud"),
		sshExtra, s.sshd.User, s.sshd.ClientKeyPath, s.moto.Endpoint, launch, s.tag, o.market, spot, pool, s.dst.Dir, s.unlock, want,
		o.imds, o.sshTimeout, s.src.Pool, pool, s.src.Pool, pool)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		s.t.Fatalf("%v\n%s", err, y)
	}
	s.cfgPath = filepath.Join(s.t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(y), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.cfg = cfg
	return cfg
}

// seams maps every instance address to the local sshd (or a closed port)
// and injects the sshd's own host key as the launch's generated key: the
// session still pins and verifies that key on every connection.
func (s *sessEnv) seams(a *activities.Activities) {
	priv, err := os.ReadFile(filepath.Join(s.sshd.Dir, "host_ed25519"))
	if err != nil {
		s.t.Fatal(err)
	}
	a.DialTarget = func(_ string, sc zfsexec.SSHConfig) (zfsexec.SSHConfig, error) {
		if sc.HostKey != s.sshd.HostKey {
			return sc, fmt.Errorf("test seam: host key %q is not the injected one", sc.HostKey)
		}
		sc.Host, sc.Port = "127.0.0.1", s.sshPort
		return sc, nil
	}
	a.HostKeyGen = func() (ec2.HostKey, error) { return ec2.HostKey{PrivatePEM: string(priv), Public: s.sshd.HostKey}, nil }
	l := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(s.logs), zap.DebugLevel))
	a.Log, a.Local = l, zfsexec.NewLocal(l)
}

func (s *sessEnv) startSession() client.WorkflowRun {
	s.t.Helper()
	run, err := s.client.ExecuteWorkflow(s.ctx(time.Minute), client.StartWorkflowOptions{
		ID: "session/nightly-" + s.tag, TaskQueue: s.queue}, workflows.SessionName,
		workflows.SessionInput{Target: "nightly", HeartbeatTimeout: 5 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	return run
}

func (s *sessEnv) status(id string) workflows.SessionStatus {
	var st workflows.SessionStatus
	if v, err := s.client.QueryWorkflow(s.ctx(10*time.Second), id, "", workflows.StatusQuery); err == nil {
		_ = v.Get(&st)
	}
	return st
}

// instances are this test's instances in moto (terminated ones included).
func (s *sessEnv) instances(m *testenv.Moto) []ec2types.Instance {
	s.t.Helper()
	api, err := awsclient.EC2(context.Background(), awsclient.Config{Region: m.Region, Endpoint: m.Endpoint})
	if err != nil {
		s.t.Fatal(err)
	}
	found, err := ec2.New(api, ec2.Options{}).FindInstancesByTag(s.ctx(30*time.Second), map[string]string{"zcloud-test": s.tag}, true)
	if err != nil {
		s.t.Fatal(err)
	}
	return found
}

// assertNoneRunning checks moto: want instances, none left running.
func (s *sessEnv) assertNoneRunning(m *testenv.Moto, want int) []ec2types.Instance {
	s.t.Helper()
	found := s.instances(m)
	if len(found) != want {
		s.t.Errorf("moto has %d instances for this test, want %d: %+v", len(found), want, found)
	}
	for _, i := range found {
		if i.State != ec2.StateTerminated {
			s.t.Errorf("instance %s is %s, want terminated", i.ID, i.State)
		}
	}
	return found
}

func (s *sessEnv) assertReplicated() {
	s.t.Helper()
	s.importInstancePool()
	for _, ds := range []string{"data1", "data2"} {
		assertSameTree(s.t, "/"+s.src.Pool.String()+"/"+ds, "/"+s.dst.Pool.String()+"/backup/"+ds)
	}
}

// failed waits for the session to fail and returns its error.
func failed(t *testing.T, run client.WorkflowRun, ctx context.Context) *temporal.ApplicationError {
	t.Helper()
	err := run.Get(ctx, nil)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("want the session to fail with an application error, got %v", err)
	}
	t.Logf("session error: %v", err)
	return ae
}

func TestSessionLaunchesUnlocksReplicatesAndTerminates(t *testing.T) {
	s := newSessEnv(t)
	subnet := s.motoSubnet()
	s.sessionConfig(sessOpts{bwlimit: 4 << 20, subnet: subnet})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()

	stop := make(chan struct{})
	var psOut bytes.Buffer
	var psWG sync.WaitGroup
	psWG.Add(1)
	go func() {
		defer psWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				out, _ := exec.Command("ps", "-eo", "args").Output()
				psOut.Write(out)
			}
		}
	}()
	begin := time.Now()
	run := s.startSession()
	var res workflows.SessionResult
	err := run.Get(s.ctx(4*time.Minute), &res)
	close(stop)
	psWG.Wait()
	if err != nil {
		t.Fatalf("session: %v\nlogs:\n%s", err, tail(s.logs.String(), 4000))
	}
	t.Logf("session took %s; cost: %s", time.Since(begin).Round(time.Millisecond), res.Status.Cost)
	st := res.Status
	if st.Phase != workflows.PhaseDone || len(st.Instances) != 1 || st.Instances[0].Released.IsZero() {
		t.Fatalf("status %+v", st)
	}
	for _, d := range st.Datasets {
		if d.State != "done" || d.Kind != "full" || d.Bytes == 0 {
			t.Errorf("dataset %+v", d)
		}
	}
	if !strings.Contains(st.Cost, "$0.0104/h (on-demand-list)") || len(res.Cost.Items) != 1 {
		t.Errorf("cost line %q", st.Cost)
	}
	if s.instancePoolImported() {
		t.Error("the instance's pool is still imported: the session did not export it")
	}
	found := s.assertNoneRunning(s.moto, 1)
	if len(found) == 1 && found[0].Tags[activities.TagHostKey] != s.sshd.HostKey {
		t.Errorf("instance tag %s = %q, want the injected key", activities.TagHostKey, found[0].Tags[activities.TagHostKey])
	}
	s.assertReplicated()
	s.replayHistory(run.GetID(), "session-nightly")

	// The pool key: never in the history, the logs, process arguments, or
	// any file on the "instance" (this host's temp and home directories,
	// the worker's key source aside).
	if !strings.Contains(psOut.String(), "transfer recv") || !strings.Contains(psOut.String(), "zcloud-unlock") && !strings.Contains(s.logs.String(), "zcloud-unlock") {
		t.Error("the process watcher never saw the session's remote commands: it proves nothing")
	}
	hist := s.historyBytes(run.GetID())
	for name, hay := range map[string][]byte{"workflow history": hist, "worker logs": []byte(s.logs.String()), "process list": psOut.Bytes()} {
		if bytes.Contains(hay, []byte(s.key)) {
			t.Errorf("pool key found in the %s", name)
		}
	}
	for _, d := range st.Datasets {
		if bytes.Contains(s.historyBytes(d.ChildID), []byte(s.key)) {
			t.Errorf("pool key found in child %s's history", d.ChildID)
		}
	}
	home, _ := os.UserHomeDir()
	if f := filesContaining(t, []byte(s.key), s.keyDir, os.TempDir(), home); len(f) > 0 {
		t.Errorf("pool key found in files: %v", f)
	}
}

// filesContaining walks roots (skipping build caches, big files and the
// skip dir) for files holding needle.
func filesContaining(t *testing.T, needle []byte, skip string, roots ...string) []string {
	var hits []string
	skipNames := map[string]bool{".cache": true, "go": true, ".pyenv": true, ".rustup": true, ".cargo": true, ".npm": true, "node_modules": true, ".git": true}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if p == skip || (p != root && skipNames[d.Name()]) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > 16<<20 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, needle) {
				hits = append(hits, p)
			}
			return nil
		})
	}
	return hits
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestSessionLaunchErrorIsClearAndLeavesNoInstance(t *testing.T) {
	s := newSessEnv(t)
	// A moto that checks AMIs, as EC2 does.
	m := testenv.NewMotoWithEnv(t, "MOTO_ENABLE_AMI_VALIDATION=true")
	s.moto = m
	s.sessionConfig(sessOpts{ami: "ami-0badbadbadbadbad0"})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	run := s.startSession()
	ae := failed(t, run, s.ctx(2*time.Minute))
	if !strings.Contains(ae.Error(), "launch") || !strings.Contains(ae.Error(), "InvalidAMIID") {
		t.Errorf("error %q does not say the launch failed on the AMI", ae.Error())
	}
	for _, i := range s.instances(m) {
		if i.State != ec2.StateTerminated {
			t.Errorf("instance %s is %s", i.ID, i.State)
		}
	}
}

func TestSessionSSHNeverReadyTerminates(t *testing.T) {
	s := newSessEnv(t)
	s.sshPort = testenv.FreePort() // nothing listens: the instance never answers SSH
	s.sessionConfig(sessOpts{sshTimeout: "4s"})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	run := s.startSession()
	ae := failed(t, run, s.ctx(2*time.Minute))
	if ae.Type() != contract.ErrTypeSSHReady || !strings.Contains(ae.Error(), "SSH not ready after 4s") {
		t.Errorf("error %s %q", ae.Type(), ae.Error())
	}
	s.assertNoneRunning(s.moto, 1)
}

func TestSessionWrongKeyFailsAndTerminates(t *testing.T) {
	s := newSessEnv(t)
	hook := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hook <- b
	}))
	t.Cleanup(srv.Close)
	s.sessionConfig(sessOpts{wrongKeyOnDisk: true, webhook: srv.URL})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	run := s.startSession()
	ae := failed(t, run, s.ctx(2*time.Minute))
	if ae.Type() != contract.ErrTypeKeyIncorrect || !strings.Contains(ae.Error(), "unlock") || !strings.Contains(ae.Error(), "wrong key") {
		t.Errorf("error %s %q", ae.Type(), ae.Error())
	}
	if s.instancePoolImported() {
		t.Error("the pool was imported although the unlock failed")
	}
	s.assertNoneRunning(s.moto, 1)
	select {
	case b := <-hook:
		if !strings.Contains(string(b), "backup session to nightly failed") || !strings.Contains(string(b), "wrong key") || bytes.Contains(b, []byte(s.key)) {
			t.Errorf("notification %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Error("no failure notification reached the webhook")
	}
}

// motoSubnet is moto's first subnet.
func (s *sessEnv) motoSubnet() string {
	s.t.Helper()
	api, err := awsclient.EC2(context.Background(), awsclient.Config{Region: s.moto.Region, Endpoint: s.moto.Endpoint})
	if err != nil {
		s.t.Fatal(err)
	}
	subs, err := api.DescribeSubnets(s.ctx(30*time.Second), &sdkec2.DescribeSubnetsInput{})
	if err != nil || len(subs.Subnets) == 0 {
		s.t.Fatalf("moto subnets: %v", err)
	}
	return aws.ToString(subs.Subnets[0].SubnetId)
}

func TestSessionStartStopModeStopsTheInstance(t *testing.T) {
	s := newSessEnv(t)
	api, err := awsclient.EC2(context.Background(), awsclient.Config{Region: s.moto.Region, Endpoint: s.moto.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.New(api, ec2.Options{PollInterval: 50 * time.Millisecond})
	inst, err := c.Launch(s.ctx(time.Minute), ec2.LaunchSpec{AMI: "ami-0123456789abcdef0", InstanceType: "t3.micro",
		Tags: map[string]string{"zcloud-test": s.tag}, ClientToken: s.tag})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(s.ctx(time.Minute), inst.ID); err != nil {
		t.Fatal(err)
	}
	s.sessionConfig(sessOpts{startStop: inst.ID})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	run := s.startSession()
	var res workflows.SessionResult
	if err := run.Get(s.ctx(3*time.Minute), &res); err != nil {
		t.Fatalf("session: %v", err)
	}
	if len(res.Status.Instances) != 1 || res.Status.Instances[0].ID != inst.ID {
		t.Errorf("instances %+v", res.Status.Instances)
	}
	got, err := c.DescribeInstance(s.ctx(time.Minute), inst.ID)
	if err != nil || got.State != ec2.StateStopped {
		t.Errorf("instance after the session: %s %v, want stopped", got.State, err)
	}
	s.assertReplicated()
}

func TestSessionReceiveFailureStillExportsAndTerminates(t *testing.T) {
	s := newSessEnv(t)
	s.sessionConfig(sessOpts{})
	// data1's target exists with no snapshot in common with the source.
	testenv.MustZFS(t, "zfs", "create", "-p", s.dst.Pool.String()+"/backup/data1")
	testenv.MustZFS(t, "zfs", "snapshot", s.dst.Pool.String()+"/backup/data1@unrelated")
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	run := s.startSession()
	ae := failed(t, run, s.ctx(3*time.Minute))
	if !strings.Contains(ae.Error(), "1 of 2 replications failed") || !strings.Contains(ae.Error(), "shares no snapshot") {
		t.Errorf("error %q", ae.Error())
	}
	st := s.status(run.GetID())
	if st.Phase != workflows.PhaseFailed || st.Datasets[1].State != "done" {
		t.Errorf("status %+v", st)
	}
	if s.instancePoolImported() {
		t.Error("pool left imported")
	}
	s.assertNoneRunning(s.moto, 1)
	s.importInstancePool()
	assertSameTree(t, "/"+s.src.Pool.String()+"/data2", "/"+s.dst.Pool.String()+"/backup/data2")
}

func TestSessionCancelledMidTransferCompensates(t *testing.T) {
	s := newSessEnv(t)
	s.sessionConfig(sessOpts{})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	s.holdAt("send", 256<<10) // the cancel comes mid-transfer
	run := s.startSession()
	s.waitHeld("send")
	if err := s.client.CancelWorkflow(s.ctx(10*time.Second), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	err := run.Get(s.ctx(2*time.Minute), nil)
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want cancelled, got %v", err)
	}
	if s.instancePoolImported() {
		t.Error("pool left imported after cancellation")
	}
	s.assertNoneRunning(s.moto, 1)
}

var sessionWorkerBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "zcloud-sessionworker-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sessionworker")
	if out, err := exec.Command("go", "build", "-o", bin, "zcloud/e2e/sessionworker").CombinedOutput(); err != nil {
		return "", &buildError{string(out), err}
	}
	return bin, nil
})

func (s *sessEnv) startSessionWorkerProcess() *exec.Cmd {
	s.t.Helper()
	bin, err := sessionWorkerBin()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", s.cfgPath, "--ssh-addr", fmt.Sprintf("127.0.0.1:%d", s.sshPort),
		"--host-key-file", filepath.Join(s.sshd.Dir, "host_ed25519"), "--host-key-pub", s.sshd.HostKey)
	s.gateEnv(cmd)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd
}

func TestSessionResumesAfterWorkerIsKilled(t *testing.T) {
	s := newSessEnv(t)
	s.sessionConfig(sessOpts{})
	s.exportInstancePool()
	s.holdAt("send", 512<<10) // the kill comes mid-transfer
	w1 := s.startSessionWorkerProcess()
	run := s.startSession()
	s.waitHeld("send")
	if err := syscall.Kill(-w1.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w1.Wait()
	t.Log("worker killed mid-session; starting another")
	s.startSessionWorkerProcess()
	var res workflows.SessionResult
	if err := run.Get(s.ctx(5*time.Minute), &res); err != nil {
		t.Fatalf("session: %v\n%s", err, tail(s.logs.String(), 4000))
	}
	if len(res.Status.Instances) != 1 {
		t.Errorf("instances %+v: the restart must continue on the same instance", res.Status.Instances)
	}
	s.assertNoneRunning(s.moto, 1)
	s.assertReplicated()
}

func TestSessionSpotInterruptionMovesToReplacement(t *testing.T) {
	s := newSessEnv(t)
	imdsPort := testenv.FreePort()
	s.sessionConfig(sessOpts{market: "spot", spotK: 1, imds: fmt.Sprintf("http://127.0.0.1:%d", imdsPort)})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	s.holdAt("send", 256<<10)
	run := s.startSession()
	s.waitHeld("send")
	// The notice appears now, in the middle of the transfer (IMDSv2 only).
	// The held send ends when the session cancels it; releasing the gate
	// only once the session counted the interruption keeps it mid-transfer.
	testenv.StartIMDSMockAt(t, imdsPort, "spot", "-I")
	waitFor(t, 2*time.Minute, "the session to count the interruption", func() bool {
		return s.status(run.GetID()).Interruptions >= 1
	})
	s.release("send")
	var res workflows.SessionResult
	if err := run.Get(s.ctx(5*time.Minute), &res); err != nil {
		t.Fatalf("session: %v\n%s", err, tail(s.logs.String(), 4000))
	}
	st := res.Status
	t.Logf("instances %+v; cost %s", st.Instances, st.Cost)
	if st.Interruptions != 1 || len(st.Instances) != 2 || !st.Instances[0].Interrupted ||
		st.Instances[0].Market != "spot" || st.Instances[1].Market != "on-demand" || res.Notice == nil {
		t.Fatalf("status %+v", st)
	}
	interrupted := 0
	for _, d := range st.Datasets {
		if d.State != "done" {
			t.Errorf("dataset %+v", d)
		}
		if d.Runs > 1 {
			interrupted++
		}
	}
	if interrupted == 0 {
		t.Error("no replication ran twice: the notice did not interrupt a transfer")
	}
	s.assertNoneRunning(s.moto, 2)
	s.assertReplicated()
}

func TestSessionCLIScheduleRunStatus(t *testing.T) {
	s := newSessEnv(t)
	s.sessionConfig(sessOpts{})
	s.startWorker(s.cfg, s.seams)
	s.exportInstancePool()
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	zc := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--config", s.cfgPath)...).CombinedOutput()
		if err != nil {
			t.Fatalf("zcloud %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command(bin, "session", "schedule", "--delete", "--config", s.cfgPath).Run() })

	if out := zc("session", "schedule"); !strings.Contains(out, "create session/nightly: daily at 02:30 Europe/London") {
		t.Fatalf("schedule: %s", out)
	}
	desc, err := s.client.ScheduleClient().GetHandle(s.ctx(10*time.Second), "session/nightly").Describe(s.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	spec := desc.Schedule.Spec
	if spec.TimeZoneName != "Europe/London" || len(spec.Calendars) != 1 || spec.Calendars[0].Hour[0].Start != 2 || spec.Calendars[0].Minute[0].Start != 30 {
		t.Fatalf("schedule spec %+v", spec)
	}
	if len(desc.Info.NextActionTimes) == 0 {
		t.Fatal("the schedule has no next run")
	}
	next := desc.Info.NextActionTimes[0].In(time.FixedZone("", 0))
	loc, _ := time.LoadLocation("Europe/London")
	if l := next.In(loc); l.Hour() != 2 || l.Minute() != 30 {
		t.Fatalf("next run %s is not 02:30 in London", l)
	}
	if out := zc("session", "schedule", "--dry-run"); !strings.Contains(out, "would update session/nightly") {
		t.Fatalf("dry run: %s", out)
	}

	out := zc("session", "run", "nightly")
	t.Logf("zcloud session run:\n%s", out)
	for _, want := range []string{"  replicating", "phase: done", "dataset: " + s.src.Pool.String() + "/data1", "(full,", "cost: 1 instance(s)", "instance: i-"} {
		if !strings.Contains(out, want) {
			t.Errorf("session run output lacks %q", want)
		}
	}
	out = zc("session", "status", "nightly")
	if !strings.Contains(out, "session session/nightly") || !strings.Contains(out, "phase: done") || !strings.Contains(out, "Completed") {
		t.Errorf("session status:\n%s", out)
	}
	// The overview: the ec2 replica is down between sessions, so its
	// newest snapshot comes from the session's record; its next run from
	// the schedule.
	var ov cli.Overview
	if err := json.Unmarshal([]byte(zc("status", "--json")), &ov); err != nil {
		t.Fatal(err)
	}
	var rep *cli.OverviewCopy
	for i, d := range ov.Datasets {
		for j, c := range d.Copies {
			if d.Dataset == s.src.Pool.String()+"/data1" && c.Tier == "replica" {
				rep = &ov.Datasets[i].Copies[j]
			}
		}
	}
	if rep == nil || !strings.HasPrefix(rep.Snapshot, "zcloud_") || rep.From == "" || rep.Skipped != "" || rep.AgeSeconds == nil ||
		rep.Schedule != "session/nightly" || !rep.NextRun.After(ov.Time) || rep.Job == nil || rep.Job.LastSuccess.IsZero() {
		t.Errorf("ec2 replica in the overview: %+v", rep)
	}
	if out := zc("session", "schedule", "--delete"); !strings.Contains(out, "delete session/nightly") {
		t.Errorf("delete: %s", out)
	}
	s.assertNoneRunning(s.moto, 1)
}
