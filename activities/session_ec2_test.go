package activities

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
)

// sessionFixture is an ec2 target "nightly" on the shared moto_server and
// the session activities in a Temporal activity environment.
type sessionFixture struct {
	t    *testing.T
	a    *Activities
	env  *testsuite.TestActivityEnvironment
	api  *sdkec2.Client
	c    *ec2.Client
	logs *observer.ObservedLogs
}

func newSessionFixture(t *testing.T) *sessionFixture {
	m := testenv.SharedMoto(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
targets:
  nightly:
    kind: ec2
    ssh: {user: root, identity_file: %q}
    ec2:
      region: %s
      endpoint: %q
      ami: ami-0123456789abcdef0
      instance_type: t3.micro
      market: spot
      spot_max_price: "0.05"
      pool: backup
      unlock: {method: none}
      prices: {t3.micro: 0.0104}
      poll_interval: 50ms
replications:
  - {source: tank/data, target: nightly, target_dataset: backup/data}
`, identityFile(t), m.Region, m.Endpoint)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	f := &sessionFixture{t: t, a: &Activities{Config: cfg, Log: zap.New(core)}, logs: logs}
	var s testsuite.WorkflowTestSuite
	f.env = s.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.a)
	if f.api, err = awsclient.EC2(context.Background(), awsclient.Config{Region: m.Region, Endpoint: m.Endpoint}); err != nil {
		t.Fatal(err)
	}
	f.c = ec2.New(f.api, ec2.Options{PollInterval: 50 * time.Millisecond})
	return f
}

func (f *sessionFixture) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	f.t.Cleanup(cancel)
	return ctx
}

// spotRequest makes a spot request tagged the way a launch with token tags
// its requests (its launch record made with recordToken, which is token
// for a real launch), and returns the request and the instance moto gave it.
func (f *sessionFixture) spotRequest(token, recordToken string) (reqID, instID string) {
	f.t.Helper()
	const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7KNGBXb9vUE3gE8nS1m1E1hm3x0i5hRkY0vQfCkz8G"
	rec, err := launchTag(f.a.Config.Targets["nightly"], "nightly", recordToken, hostKey)
	if err != nil {
		f.t.Fatal(err)
	}
	var tags []types.Tag
	for k, v := range map[string]string{ec2.TagClientToken: token, TagLaunch: rec, TagTarget: "nightly", TagHostKey: hostKey} {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := f.api.RequestSpotInstances(f.ctx(), &sdkec2.RequestSpotInstancesInput{
		InstanceCount:       aws.Int32(1),
		LaunchSpecification: &types.RequestSpotLaunchSpecification{ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: "t3.micro"},
		TagSpecifications:   []types.TagSpecification{{ResourceType: types.ResourceTypeSpotInstancesRequest, Tags: tags}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	r := out.SpotInstanceRequests[0]
	if aws.ToString(r.InstanceId) == "" {
		f.t.Fatalf("moto did not fulfil %s", aws.ToString(r.SpotInstanceRequestId))
	}
	return aws.ToString(r.SpotInstanceRequestId), aws.ToString(r.InstanceId)
}

// liveRequest says whether reqID is still open or active.
func (f *sessionFixture) liveRequest(reqID string) bool {
	out, err := f.api.DescribeSpotInstanceRequests(f.ctx(), &sdkec2.DescribeSpotInstanceRequestsInput{
		Filters: []types.Filter{{Name: aws.String("spot-instance-request-id"), Values: []string{reqID}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range out.SpotInstanceRequests {
		if r.State == types.SpotInstanceStateOpen || r.State == types.SpotInstanceStateActive {
			return true
		}
	}
	return false
}

// A launch that died between RequestSpotInstances and tagging its instance
// left a request and an instance that carries no client token: the
// session's compensation (ReleaseInstance with the launch's token) cancels
// the request and terminates the instance, and doing it again is a no-op.
func TestReleaseInstanceCancelsTheSpotRequestOfAnAbandonedLaunch(t *testing.T) {
	f := newSessionFixture(t)
	token := testenv.RandomName("zc-")
	reqID, instID := f.spotRequest(token, token)
	req := contract.ReleaseRequest{Target: "nightly", ClientToken: token}
	if _, err := f.env.ExecuteActivity(f.a.ReleaseInstance, req); err != nil {
		t.Fatal(err)
	}
	if f.liveRequest(reqID) {
		t.Errorf("spot request %s is still open or active", reqID)
	}
	inst, err := f.c.DescribeInstance(f.ctx(), instID)
	if err != nil || inst.State != ec2.StateTerminated {
		t.Errorf("instance %s of the request: %s %v, want terminated", instID, inst.State, err)
	}
	if n := f.logs.FilterMessage("cancelled spot request").FilterField(zap.String("spot_request", reqID)).Len(); n != 1 {
		t.Errorf("logged the cancel of %s %d times, want once", reqID, n)
	}
	if n := f.logs.FilterMessage("terminated").FilterField(zap.String("instance", instID)).Len(); n != 1 {
		t.Errorf("logged the termination of %s %d times, want once", instID, n)
	}
	before := f.logs.Len()
	if _, err := f.env.ExecuteActivity(f.a.ReleaseInstance, req); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if after := f.logs.TakeAll(); len(after) != before {
		t.Errorf("second release did something: %+v", after[before:])
	}
}

// A release by client token checks the launch record of everything that
// carries the token first: a token whose request holds no record of this
// worker's, or a record made with another token, cancels and terminates
// nothing.
func TestReleaseByTokenRefusesWhatThisWorkerDidNotLaunchWithIt(t *testing.T) {
	f := newSessionFixture(t)
	other := testenv.RandomName("zc-")
	for name, recordToken := range map[string]string{"another launch's record": other, "no valid record": ""} {
		t.Run(name, func(t *testing.T) {
			token := testenv.RandomName("zc-")
			reqID, instID := f.spotRequest(token, recordToken)
			if recordToken == "" { // a record this worker did not make: the tag is overwritten
				if _, err := f.api.CreateTags(f.ctx(), &sdkec2.CreateTagsInput{Resources: []string{reqID},
					Tags: []types.Tag{{Key: aws.String(TagLaunch), Value: aws.String(token + " forged")}}}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.env.ExecuteActivity(f.a.ReleaseInstance, contract.ReleaseRequest{Target: "nightly", ClientToken: token})
			wantNotAllowed(t, err, "client_token")
			if !f.liveRequest(reqID) {
				t.Errorf("spot request %s was cancelled", reqID)
			}
			if inst, err := f.c.DescribeInstance(f.ctx(), instID); err != nil || inst.State == ec2.StateTerminated || inst.State == ec2.StateShuttingDown {
				t.Errorf("instance %s: %s %v, want it running", instID, inst.State, err)
			}
			f.api.CancelSpotInstanceRequests(f.ctx(), &sdkec2.CancelSpotInstanceRequestsInput{SpotInstanceRequestIds: []string{reqID}})
			f.c.Terminate(f.ctx(), instID)
		})
	}
}

// The cost line of a session on cheap spot instances keeps the digits of
// the price and the amount instead of rounding them to $0.0000.
func TestSessionCostLineKeepsDigitsOfCheapPrices(t *testing.T) {
	f := newSessionFixture(t)
	req := contract.CostRequest{Target: "nightly", Uses: []contract.InstanceUse{
		{Instance: ec2types.Instance{ID: "i-0a", Type: "t3.micro", Market: ec2types.Spot}, Seconds: 432},
		{Instance: ec2types.Instance{ID: "i-0b", Type: "t3.micro", Market: ec2types.OnDemand}, Seconds: 1800},
	}}
	v, err := f.env.ExecuteActivity(f.a.SessionCost, req)
	if err != nil {
		t.Fatal(err)
	}
	var rep contract.CostReport
	if err := v.Get(&rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("cost line: %s", rep.Line)
	// moto's spot price is $0.00001/h; 0.12 h of it is $0.0000012.
	for _, want := range []string{
		"2 instance(s), 0.620 instance-hours, $0.0052: ",
		"i-0a t3.micro spot 0.120 h × $0.00001/h (spot-history) = $0.0000012",
		"i-0b t3.micro on-demand 0.500 h × $0.0104/h (on-demand-list) = $0.0052",
	} {
		if !strings.Contains(rep.Line, want) {
			t.Errorf("cost line %q lacks %q", rep.Line, want)
		}
	}
	if strings.Contains(rep.Line, "$0.0000/h") || strings.Contains(rep.Line, "$0.0000 ") {
		t.Errorf("cost line %q rounds a non-zero price to zero", rep.Line)
	}
}

// costTerm is one instance's "H h × $P/h (source) = $A" in a cost line.
var costTerm = regexp.MustCompile(`([0-9.e+-]+) h × \$([0-9.e+-]+)/h \([a-z-]+\) = \$([0-9.e+-]+)`)

// The cost line of a session with very short uses shows hours that
// multiply out to the amounts it shows, instead of "0.000 h × ... =
// $0.00000822".
func TestSessionCostLineMultipliesOutForShortUses(t *testing.T) {
	f := newSessionFixture(t)
	req := contract.CostRequest{Target: "nightly", Uses: []contract.InstanceUse{
		{Instance: ec2types.Instance{ID: "i-0a", Type: "t3.micro", Market: ec2types.OnDemand}, Seconds: 1.2},
		{Instance: ec2types.Instance{ID: "i-0b", Type: "t3.micro", Market: ec2types.OnDemand}, Seconds: 2.846},
		{Instance: ec2types.Instance{ID: "i-0c", Type: "t3.micro", Market: ec2types.Spot}, Seconds: 4},
		{Instance: ec2types.Instance{ID: "i-0d", Type: "t3.micro", Market: ec2types.OnDemand}, Seconds: 434.16},
	}}
	v, err := f.env.ExecuteActivity(f.a.SessionCost, req)
	if err != nil {
		t.Fatal(err)
	}
	var rep contract.CostReport
	if err := v.Get(&rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("cost line: %s", rep.Line)
	for _, want := range []string{
		"4 instance(s), 0.123 instance-hours, $0.00127: ",
		"i-0a t3.micro on-demand 0.0003333 h × $0.0104/h (on-demand-list) = $0.00000347",
		"i-0b t3.micro on-demand 0.0007906 h × $0.0104/h (on-demand-list) = $0.00000822",
		"i-0c t3.micro spot 0.00111 h × $0.00001/h (spot-history) = $0.0000000111",
		"i-0d t3.micro on-demand 0.1206 h × $0.0104/h (on-demand-list) = $0.00125",
	} {
		if !strings.Contains(rep.Line, want) {
			t.Errorf("cost line %q lacks %q", rep.Line, want)
		}
	}
	terms := costTerm.FindAllStringSubmatch(rep.Line, -1)
	if len(terms) != len(req.Uses) {
		t.Fatalf("cost line %q has %d terms, want %d", rep.Line, len(terms), len(req.Uses))
	}
	for _, m := range terms {
		h, _ := strconv.ParseFloat(m[1], 64)
		p, _ := strconv.ParseFloat(m[2], 64)
		if got := ec2.FormatUSD(h * p); got != "$"+m[3] {
			t.Errorf("%q does not multiply out: %s h × $%s/h = %s", m[0], m[1], m[2], got)
		}
	}
}
