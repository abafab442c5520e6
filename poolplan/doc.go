// Package poolplan is the pure planning logic behind EBS-backed pools:
// layouts and their limits, in-place grow plans under EBS's modification
// rate rule, and rolling-replace plans a workflow can drive step by step.
//
// Everything here is deterministic: no I/O, no clock (callers pass "now"),
// no goroutines, no map iteration in results, so Temporal workflow code may
// call it directly.
package poolplan
