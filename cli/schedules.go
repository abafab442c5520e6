package cli

import (
	"context"

	"go.temporal.io/sdk/client"
)

// updateSchedule rewrites an existing schedule's spec, action, overlap
// policy and catch-up window to opts (what `apply`/`schedule` commands do
// when the schedule already exists), keeping its state (paused, notes).
func updateSchedule(ctx context.Context, h client.ScheduleHandle, opts client.ScheduleOptions) error {
	return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &opts.Spec
		s.Action = opts.Action
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = opts.Overlap
		s.Policy.CatchupWindow = opts.CatchupWindow
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
}
