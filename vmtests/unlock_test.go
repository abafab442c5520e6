package vmtests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"zcloud/activities"
	"zcloud/cloud/awsclient"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/zfsexec"
)

// The session's Unlock and Lock steps for real on OpenZFS 2.3: `zfs
// load-key` of a native encryption root and `cryptsetup open` of a LUKS
// volume, each with the key from the worker's key source on the command's
// stdin only. The VM plays a start-stop ec2 target (its instance in moto);
// keystatus and /dev/mapper show the effect, and the key appears in no
// argv or log line. A wrong key is a permanent KeyIncorrect error that
// does not quote the key.
func TestUnlockAndLockForReal(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	moto := testenv.NewMoto(t)
	api, err := awsclient.EC2(ctx, awsclient.Config{Region: moto.Region, Endpoint: moto.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := api.RunInstances(ctx, &sdk.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	instance := aws.ToString(run.Instances[0].InstanceId)

	key := "vm-unlock-" + randHex(12)
	keyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(keyDir, "pool-key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keyDir, "wrong-key"), []byte("not-"+key[4:]), 0o600); err != nil {
		t.Fatal(err)
	}
	// A natively encrypted root whose key is not loaded (as after import).
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	enc := child(t, p, "enc")
	h.createEncrypted(t, enc, key)
	h.sh(t, `zfs unmount "$1" && zfs unload-key "$1"`, enc.String())
	// A LUKS volume, closed.
	luksDev := h.attachDisks(t, 1, 64<<20)[0]
	if err := h.luks.LuksFormat(ctx, luksDev, []byte(key)); err != nil {
		t.Fatal(err)
	}
	mapper := "zc" + randHex(4)

	target := func(name, unlock string) string {
		return fmt.Sprintf(`
  %s:
    kind: ec2
    transport: ssh
    ssh: {host: %s, port: %d, user: %s, identity_file: %q, host_key: %q}
    ec2:
      region: us-east-1
      endpoint: %q
      mode: start-stop
      instance_id: %s
      pool: %s
      unlock: %s`, name, h.vm.Host, h.vm.Port, h.vm.User, h.vm.KeyPath, h.vm.HostKey, moto.Endpoint, instance, p, unlock)
	}
	y := "keys: {dir: " + fmt.Sprintf("%q", keyDir) + "}\ntargets:" +
		target("vmzfs", fmt.Sprintf("{method: zfs, key: pool-key, dataset: %s}", enc)) +
		target("vmwrong", fmt.Sprintf("{method: zfs, key: wrong-key, dataset: %s}", enc)) +
		target("vmluks", fmt.Sprintf("{method: luks, key: pool-key, devices: [{device: %s, name: %s}]}", luksDev, mapper)) + "\n"
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	core, logs := observer.New(zap.DebugLevel)
	a := activities.New(cfg, zap.New(core))
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	step := func(act any, target string) error {
		_, err := env.ExecuteActivity(act, contract.SessionStep{Target: target})
		return err
	}
	mapped := func() bool {
		_, err := h.shErr(`test -b /dev/mapper/"$1"`, mapper)
		return err == nil
	}

	// A wrong key: permanent, and the error does not carry it.
	err = step(a.Unlock, "vmwrong")
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != contract.ErrTypeKeyIncorrect || strings.Contains(err.Error(), key[4:]) {
		t.Errorf("unlock with the wrong key: %v", err)
	}
	if ks := h.prop(t, enc, "keystatus"); ks != "unavailable" {
		t.Errorf("keystatus %q after a wrong key", ks)
	}

	if err := step(a.Unlock, "vmzfs"); err != nil {
		t.Fatalf("unlock (zfs): %v", err)
	}
	if ks := h.prop(t, enc, "keystatus"); ks != "available" {
		t.Fatalf("keystatus %q after unlock", ks)
	}
	if err := step(a.Unlock, "vmzfs"); err != nil { // a retried step
		t.Errorf("unlock again: %v", err)
	}
	if err := step(a.Lock, "vmzfs"); err != nil {
		t.Fatalf("lock (zfs): %v", err)
	}
	if ks := h.prop(t, enc, "keystatus"); ks != "unavailable" {
		t.Errorf("keystatus %q after lock", ks)
	}

	if err := step(a.Unlock, "vmluks"); err != nil {
		t.Fatalf("unlock (luks): %v", err)
	}
	if !mapped() {
		t.Fatalf("/dev/mapper/%s missing after unlock", mapper)
	}
	if err := step(a.Lock, "vmluks"); err != nil {
		t.Fatalf("lock (luks): %v", err)
	}
	if mapped() {
		t.Errorf("/dev/mapper/%s still there after lock", mapper)
	}

	// The key went on stdin only: no command line, no log line has it.
	var ran []string
	for _, l := range logs.All() {
		line := l.Message + fmt.Sprint(l.Context)
		if strings.Contains(line, key) || strings.Contains(line, key[4:]) {
			t.Errorf("the key is in a log line: %s", line)
		}
		for _, f := range l.Context {
			if f.Key == "argv" {
				ran = append(ran, fmt.Sprint(f.Interface))
			}
		}
	}
	all := strings.Join(ran, "\n")
	if !strings.Contains(all, "[zfs load-key") || !strings.Contains(all, "[cryptsetup open --type luks --key-file=- ") ||
		!strings.Contains(all, "[zfs unload-key") || !strings.Contains(all, "[cryptsetup close") {
		t.Errorf("commands run:\n%s", all)
	}
}
