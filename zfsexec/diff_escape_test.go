package zfsexec

import "testing"

func TestUnescapeDiffPath(t *testing.T) {
	for in, want := range map[string]string{
		`/tank/with\0040space`: "/tank/with space", // OpenZFS 0.8+: 4 octal digits
		`/tank/caf\0303\0251`:  "/tank/caf\u00e9",  // UTF-8 bytes, escaped one by one
		`/tank/old\040style`:   "/tank/old style",  // illumos / older: 3 digits
		`/tank/plain`:          "/tank/plain",
		`/tank/back\0134slash`: `/tank/back\slash`,
	} {
		got, err := unescapeDiffPath(in)
		if err != nil || got != want {
			t.Errorf("unescapeDiffPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := unescapeDiffPath(`/tank/bad\09`); err == nil {
		t.Error("a truncated escape was accepted")
	}
}
