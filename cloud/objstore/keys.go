package objstore

import (
	"errors"
	"fmt"
	"strings"
)

var errInvalidKey = errors.New("invalid object key")

// ReservedPrefix starts path components that backends keep for themselves
// (sidecar metadata, vault index); user keys may not use it.
const ReservedPrefix = ".zcloud"

// CheckKey validates a key: non-empty, at most 1024 bytes, relative,
// printable ASCII, no empty, "." or ".." components, no reserved component.
// Every backend checks keys the same way so a key valid on one is valid on all.
func CheckKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", errInvalidKey, key, why) }
	if key == "" || len(key) > 1024 {
		return bad("length must be 1..1024")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return bad("only printable ASCII")
		}
	}
	for _, c := range strings.Split(key, "/") {
		switch {
		case c == "", c == ".", c == "..":
			return bad("empty, . or .. path component")
		case strings.HasPrefix(c, ReservedPrefix):
			return bad("components starting with " + ReservedPrefix + " are reserved")
		}
	}
	return nil
}
