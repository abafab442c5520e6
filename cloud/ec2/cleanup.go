package ec2

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LaunchCleanup is what CleanupLaunch (or a Launch tidying up after an
// earlier attempt) did.
type LaunchCleanup struct {
	// CancelledRequests are the spot requests it cancelled (they were
	// still open or active).
	CancelledRequests []string `json:"cancelled_requests,omitempty"`
	// Terminated are the instances it terminated (they were live).
	Terminated []string `json:"terminated,omitempty"`
}

// Empty says whether there was nothing to do.
func (l LaunchCleanup) Empty() bool { return len(l.CancelledRequests) == 0 && len(l.Terminated) == 0 }

func (l LaunchCleanup) String() string {
	if l.Empty() {
		return "nothing left behind"
	}
	var parts []string
	if len(l.CancelledRequests) > 0 {
		parts = append(parts, "cancelled spot request(s) "+strings.Join(l.CancelledRequests, ", "))
	}
	if len(l.Terminated) > 0 {
		parts = append(parts, "terminated instance(s) "+strings.Join(l.Terminated, ", "))
	}
	return strings.Join(parts, "; ")
}

// CleanupLaunch gives back everything a Launch with this client token
// made, wherever it stopped: it cancels the token's spot requests that are
// still open or active (so none is fulfilled later) and terminates every
// live instance that carries the token or came from one of its spot
// requests. The second kind is an instance whose request was made but
// which was never tagged: a worker that died between RequestSpotInstances
// and tagging the instance leaves one, and only the request (tagged at
// creation, atomically) says whose it is.
//
// beforeTerminate, if not nil, runs for each live instance before it is
// terminated (the session detaches its EBS volumes there); an error stops
// the cleanup. Cancelled requests and terminated instances are left
// alone, so running it again, or after a partial run, is safe and a run
// with nothing left behind does nothing.
func (c *Client) CleanupLaunch(ctx context.Context, token string, beforeTerminate func(ctx context.Context, instanceID string) error) (LaunchCleanup, error) {
	return c.cleanupLaunch(ctx, token, "", beforeTerminate)
}

// cleanupLaunch is CleanupLaunch sparing the instance keep (and the spot
// request it came from): Launch uses it to cancel what earlier attempts
// with the same token left besides the instance it returns.
func (c *Client) cleanupLaunch(ctx context.Context, token, keep string, beforeTerminate func(ctx context.Context, instanceID string) error) (LaunchCleanup, error) {
	var done LaunchCleanup
	if token == "" {
		return done, permanent("clean up launch", "no client token to find the launch's resources by")
	}
	var ids []string
	seen := map[string]bool{keep: true, "": true}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	// Spot requests first: once cancelled, an open request can no longer
	// produce an instance behind our back.
	reqs, err := c.spotRequests(ctx, token, "")
	if err != nil {
		return done, err
	}
	for _, r := range reqs {
		reqID, inst := aws.ToString(r.SpotInstanceRequestId), aws.ToString(r.InstanceId)
		if keep != "" && inst == keep {
			continue
		}
		add(inst)
		if r.State != types.SpotInstanceStateOpen && r.State != types.SpotInstanceStateActive {
			continue
		}
		// A request fulfilled while we cancel it names its instance only
		// now; cancelSpot reads it back.
		got, err := c.cancelSpot(ctx, reqID)
		if err != nil {
			return done, err
		}
		done.CancelledRequests = append(done.CancelledRequests, reqID)
		add(got)
	}
	tagged, err := c.FindInstancesByTag(ctx, map[string]string{TagClientToken: token}, false)
	if err != nil {
		return done, err
	}
	for _, i := range tagged {
		add(i.ID)
	}
	for _, id := range ids {
		inst, err := c.DescribeInstance(ctx, id)
		if IsNotFound(err) || (err == nil && (inst.State == StateTerminated || inst.State == StateShuttingDown)) {
			continue
		}
		if err != nil {
			return done, err
		}
		if beforeTerminate != nil {
			if err := beforeTerminate(ctx, id); err != nil {
				return done, err
			}
		}
		if err := c.Terminate(ctx, id); err != nil {
			return done, err
		}
		done.Terminated = append(done.Terminated, id)
	}
	return done, nil
}
