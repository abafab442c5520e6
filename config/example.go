package config

import _ "embed"

// Example is the annotated example configuration (zcloud.example.yaml),
// printed by `zcloud config example` and parsed by a test.
//
//go:embed zcloud.example.yaml
var Example []byte
