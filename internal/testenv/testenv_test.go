package testenv

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"zcloud/zfsexec"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestSSHDRunsCommandsWithPinnedHostKey(t *testing.T) {
	s := SharedSSHD(t)
	r := s.Runner(t)
	res, err := r.Run(context.Background(), zfsexec.Cmd{Argv: []string{"echo", "hello world"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "hello world" {
		t.Fatalf("got %q", got)
	}
}

func TestPoolIsUsable(t *testing.T) {
	p := NewPool(t, "tenv", 1, 64, "")
	out := MustZFS(t, "zpool", "list", "-H", "-o", "name,health", p.Pool.String())
	if !strings.Contains(out, "ONLINE") {
		t.Fatalf("pool not online: %q", out)
	}
	if err := os.WriteFile(p.Mountpoint(p.Root())+"/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMotoAnswers(t *testing.T) {
	m := SharedMoto(t)
	resp, err := http.Get(m.Endpoint + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("moto: %s", resp.Status)
	}
}
