package workflows

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"zcloud/contract"
)

// A workflow input is only a request: whoever can start a workflow writes
// it. Fields a workflow does not have are refused rather than silently
// ignored, so an input that tries to say where a receiver lives, which
// store or key to use or what address to connect to fails at once, naming
// the field, instead of looking as if it had been obeyed
// (docs/security.md). What the fields it does have may choose, the worker
// checks against its config (activities/authorize.go).

// inputFields records the JSON fields of an input its type does not have.
// It is never serialised.
type inputFields struct {
	unknown []string
}

// decodeInput decodes b into v (a pointer to a method-less copy of the
// input type) and notes the fields v's type lacks.
func decodeInput(b []byte, v any, f *inputFields) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(b, &keys) != nil {
		return nil // not an object: the decode above said what was wrong
	}
	known := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			continue
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		known[strings.ToLower(name)] = true
	}
	f.unknown = nil
	for k := range keys {
		if !known[strings.ToLower(k)] {
			f.unknown = append(f.unknown, k)
		}
	}
	slices.Sort(f.unknown)
	return nil
}

// floor is a duration an input may shorten (tests do) but not below
// MinInterval: a heartbeat timeout or poll interval of a millisecond would
// turn every retry or poll into a busy loop against the host and the store.
type floor struct {
	field string
	d     time.Duration
}

// MinInterval is the shortest heartbeat timeout or poll interval an input
// may ask for.
const MinInterval = time.Second

// refuse fails the workflow for the first unknown field, or a duration
// below its floor.
func (f inputFields) refuse(workflow string, floors ...floor) error {
	if len(f.unknown) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s: not allowed; %s input has no such field (targets, addresses, host keys, receiver paths and commands, stores, keys and limits come from the worker's config)",
			f.unknown[0], workflow), contract.ErrTypeNotAllowed, nil)
	}
	for _, fl := range floors {
		if fl.d != 0 && fl.d < MinInterval {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: not allowed; %s is below the minimum %s", fl.field, fl.d, MinInterval),
				contract.ErrTypeNotAllowed, nil)
		}
	}
	return nil
}

func (in *ReplicateInput) UnmarshalJSON(b []byte) error {
	type plain ReplicateInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *SessionInput) UnmarshalJSON(b []byte) error {
	type plain SessionInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *PolicyInput) UnmarshalJSON(b []byte) error {
	type plain PolicyInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *PoolInput) UnmarshalJSON(b []byte) error {
	type plain PoolInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *PoolGrowInput) UnmarshalJSON(b []byte) error {
	type plain PoolGrowInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *PoolDestroyInput) UnmarshalJSON(b []byte) error {
	type plain PoolDestroyInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *ArchiveInput) UnmarshalJSON(b []byte) error {
	type plain ArchiveInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *RestoreInput) UnmarshalJSON(b []byte) error {
	type plain RestoreInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *VerifyInput) UnmarshalJSON(b []byte) error {
	type plain VerifyInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *StagingInput) UnmarshalJSON(b []byte) error {
	type plain StagingInput
	return decodeInput(b, (*plain)(in), &in.fields)
}

func (in *PoolSessionInput) UnmarshalJSON(b []byte) error {
	type plain PoolSessionInput
	return decodeInput(b, (*plain)(in), &in.fields)
}
