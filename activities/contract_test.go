package activities

import (
	"reflect"
	"slices"
	"testing"

	"zcloud/contract"
)

// Workflows schedule activities by the names in package contract; the worker
// registers the methods of *Activities under their method names. A name
// without a method would fail every run at schedule time, a method without
// a name is unreachable from workflow code.
func TestContractNamesAreTheRegisteredMethods(t *testing.T) {
	typ := reflect.TypeOf(&Activities{})
	var methods []string
	for i := range typ.NumMethod() {
		methods = append(methods, typ.Method(i).Name)
	}
	names := contract.Names()
	for _, n := range names {
		if !slices.Contains(methods, n) {
			t.Errorf("contract names activity %q, but *Activities has no such method", n)
		}
	}
	for _, m := range methods {
		if !slices.Contains(names, m) {
			t.Errorf("*Activities.%s is registered as an activity but missing from contract.Names", m)
		}
	}
}
