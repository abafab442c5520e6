package transfer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSessionNeverPrintsItsKey(t *testing.T) {
	s := newTestSession(t, "")
	key := hex.EncodeToString(s.key[:])
	js, _ := json.Marshal(map[string]any{"s": s, "p": &s})
	printed := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %x %q", s, s, s, s, s, s),
		fmt.Sprintf("%v %+v", &s, &s), string(js),
	}
	for _, p := range printed {
		if strings.Contains(strings.ToLower(p), key) || strings.Contains(p, string(s.key[:])) {
			t.Fatalf("key leaked in %q", p)
		}
		if !strings.Contains(p, "REDACTED") {
			t.Fatalf("%q is not redacted", p)
		}
	}
}

func TestSessionLineRoundTrip(t *testing.T) {
	for _, c := range []string{CipherAESGCM, CipherChaCha20} {
		s := newTestSession(t, c)
		var buf bytes.Buffer
		if err := WriteSession(&buf, s); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("rest of stdin")
		br := bufio.NewReader(&buf)
		got, err := ReadSession(br)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatal("session changed in transit")
		}
		if rest, _ := br.ReadString(0); rest != "rest of stdin" {
			t.Fatalf("ReadSession consumed past its line: rest %q", rest)
		}
	}
}

func TestReadSessionRejectsMalformed(t *testing.T) {
	good := newTestSession(t, "")
	var buf bytes.Buffer
	WriteSession(&buf, good)
	line := strings.TrimSuffix(buf.String(), "\n")
	f := strings.Fields(line)
	bad := map[string]string{
		"empty":        "",
		"no newline":   line,
		"wrong magic":  "x " + strings.Join(f[1:], " ") + "\n",
		"bad cipher":   strings.Join([]string{f[0], "rot13", f[2], f[3]}, " ") + "\n",
		"short key":    strings.Join([]string{f[0], f[1], f[2], f[3][:10]}, " ") + "\n",
		"non-hex id":   strings.Join([]string{f[0], f[1], strings.Repeat("zz", 16), f[3]}, " ") + "\n",
		"endless line": strings.Repeat("a", 10000) + "\n",
	}
	for name, in := range bad {
		_, err := ReadSession(bufio.NewReader(strings.NewReader(in)))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), f[3]) {
			t.Errorf("%s: error echoes the key", name)
		}
	}
	if _, err := NewSession("des"); err == nil {
		t.Error("NewSession accepted an unknown cipher")
	}
}

func TestNonceUniquePerFrame(t *testing.T) {
	seen := map[string]string{}
	add := func(h frameHeader) {
		n := string(h.nonce(nil))
		id := fmt.Sprintf("%+v", h)
		if prev, dup := seen[n]; dup {
			t.Fatalf("nonce reused by %s and %s", prev, id)
		}
		seen[n] = id
	}
	for seq := uint64(0); seq < 1000; seq++ {
		add(frameHeader{seq: seq, typ: frameData})
	}
	for conn := uint16(0); conn < 100; conn++ {
		add(frameHeader{seq: 1000, typ: frameEnd, conn: conn})
		for seq := uint64(0); seq < 20; seq++ {
			add(frameHeader{seq: seq, typ: frameKeepalive, conn: conn})
		}
	}
}
