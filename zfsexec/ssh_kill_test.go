package zfsexec

import (
	"bytes"
	"testing"
	"time"
)

func TestPIDCatcher(t *testing.T) {
	var out bytes.Buffer
	p := newPIDCatcher(&out)
	for _, chunk := range []string{"zcloud-rem", "ote-pid:4242\ncannot open 'x'", ": dataset does not exist\n"} {
		p.Write([]byte(chunk))
	}
	if p.wait(0) != 4242 || out.String() != "cannot open 'x': dataset does not exist\n" {
		t.Fatalf("pid %d, stderr %q", p.wait(0), out.String())
	}

	out.Reset()
	p = newPIDCatcher(&out)
	p.Write([]byte("no marker"))
	p.flush()
	if p.wait(0) != 0 || out.String() != "no marker" {
		t.Fatalf("pid %d, stderr %q", p.wait(0), out.String())
	}
	if got := p.wait(10 * time.Millisecond); got != 0 {
		t.Fatal(got)
	}
	if remoteLine([]string{"zfs", "list", "a b"}) != "echo zcloud-remote-pid:$$ >&2; exec zfs list 'a b'" {
		t.Fatal(remoteLine([]string{"zfs", "list", "a b"}))
	}
}
