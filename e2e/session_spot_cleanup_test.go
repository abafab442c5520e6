package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"zcloud/activities"
	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/contract"
)

// launchToken waits for the session's LaunchInstance to be scheduled and
// returns the client token the workflow gave it.
func (s *sessEnv) launchToken(id string) string {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		it := s.client.GetWorkflowHistory(s.ctx(10*time.Second), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "LaunchInstance" {
				var req contract.LaunchRequest
				if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &req); err != nil || req.ClientToken == "" {
					s.t.Fatalf("LaunchInstance input: %+v %v", req, err)
				}
				return req.ClientToken
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the session never scheduled LaunchInstance")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A spot launch that fails for good after an earlier attempt's
// RequestSpotInstances (that worker died before it could tag the instance:
// the request is made here by hand, tagged with the launch's token as the
// launch tags it) leaves nothing behind: the session's compensation
// cancels the request and terminates its instance, which carries no token.
func TestSessionFailedSpotLaunchCancelsItsSpotRequest(t *testing.T) {
	s := newSessEnv(t)
	s.sessionConfig(sessOpts{market: "spot"})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	s.startWorker(s.cfg, s.seams, func(a *activities.Activities) {
		// The launch activity gets as far as making its host key, then
		// fails for good (after the test made the crashed attempt's request).
		a.HostKeyGen = func() (ec2.HostKey, error) {
			select {
			case <-release:
			case <-time.After(time.Minute):
			}
			return ec2.HostKey{}, temporal.NewNonRetryableApplicationError("test: the launch dies after its spot request", "TestLaunchDied", nil)
		}
	})
	run := s.startSession()
	token := s.launchToken(run.GetID())

	api, err := awsclient.EC2(context.Background(), awsclient.Config{Region: s.moto.Region, Endpoint: s.moto.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	// The crashed attempt's request carries the launch record, as a launch tags it.
	const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7KNGBXb9vUE3gE8nS1m1E1hm3x0i5hRkY0vQfCkz8G"
	rec, err := activities.LaunchRecord(s.cfg.Targets["nightly"], "nightly", token, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := api.RequestSpotInstances(s.ctx(30*time.Second), &sdkec2.RequestSpotInstancesInput{
		InstanceCount:       aws.Int32(1),
		SpotPrice:           aws.String("0.05"),
		LaunchSpecification: &types.RequestSpotLaunchSpecification{ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: "t3.micro"},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSpotInstancesRequest, Tags: []types.Tag{
			{Key: aws.String(ec2.TagClientToken), Value: aws.String(token)},
			{Key: aws.String("zcloud-test"), Value: aws.String(s.tag)},
			{Key: aws.String(activities.TagLaunch), Value: aws.String(rec)},
			{Key: aws.String(activities.TagTarget), Value: aws.String("nightly")},
			{Key: aws.String(activities.TagHostKey), Value: aws.String(hostKey)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reqID, instID := aws.ToString(out.SpotInstanceRequests[0].SpotInstanceRequestId), aws.ToString(out.SpotInstanceRequests[0].InstanceId)
	if instID == "" {
		t.Fatalf("moto did not fulfil %s", reqID)
	}
	once.Do(func() { close(release) })

	ae := failed(t, run, s.ctx(2*time.Minute))
	if !strings.Contains(ae.Error(), "launch") || !strings.Contains(ae.Error(), "the launch dies") {
		t.Errorf("error %q does not say the launch failed", ae.Error())
	}
	c := ec2.New(api, ec2.Options{})
	inst, err := c.DescribeInstance(s.ctx(30*time.Second), instID)
	if err != nil || inst.State != ec2.StateTerminated {
		t.Errorf("instance %s of the abandoned spot request: %s %v, want terminated", instID, inst.State, err)
	}
	reqs, err := api.DescribeSpotInstanceRequests(s.ctx(30*time.Second), &sdkec2.DescribeSpotInstanceRequestsInput{
		Filters: []types.Filter{{Name: aws.String("tag:zcloud-test"), Values: []string{s.tag}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs.SpotInstanceRequests {
		if r.State == types.SpotInstanceStateOpen || r.State == types.SpotInstanceStateActive {
			t.Errorf("spot request %s is still %s", aws.ToString(r.SpotInstanceRequestId), r.State)
		}
	}
	if logs := s.logs.String(); !strings.Contains(logs, `"cancelled spot request"`) || !strings.Contains(logs, reqID) {
		t.Errorf("the worker never logged cancelling %s:\n%s", reqID, tail(logs, 3000))
	}
	if st := s.status(run.GetID()); st.Phase != "failed" || len(st.Instances) != 0 {
		t.Errorf("status %+v", st)
	}
}
