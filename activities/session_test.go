package activities

import "testing"

func TestParseSpotPoll(t *testing.T) {
	if n, err := parseSpotPoll([]byte("<?xml version=\"1.0\"?><Error>Not Found</Error>\n404")); n != nil || err != nil {
		t.Fatalf("404: %+v %v", n, err)
	}
	n, err := parseSpotPoll([]byte("{\"action\": \"terminate\", \"time\": \"2026-03-02T03:15:00Z\"}\n200\n"))
	if err != nil || n == nil || n.Action != "terminate" {
		t.Fatalf("200: %+v %v", n, err)
	}
	for _, bad := range []string{"", "garbage", "{}\n200", "\n401", "x\n500"} {
		if n, err := parseSpotPoll([]byte(bad)); err == nil {
			t.Errorf("%q: %+v, want an error", bad, n)
		}
	}
}
