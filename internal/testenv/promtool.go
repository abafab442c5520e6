package testenv

import "path/filepath"

// PromtoolBin finds promtool (Prometheus's rule checker): the cache dir
// where scripts/setup.sh puts it, or $PATH.
func PromtoolBin() (string, error) {
	return lookPath("promtool", filepath.Join(CacheDir(), "bin", "promtool"))
}
