package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// runMbuffer moves the stream with mbuffer's network mode (no encryption):
// `mbuffer -I port -o /dev/null` receives, `mbuffer -O 127.0.0.1:port` sends.
// With toPipe the receiver writes to stdout instead, a pipe into `cat
// >/dev/null` (as `mbuffer -I port | zfs receive` would, and like the zcloud
// and ssh receivers here).
func runMbuffer(cfg config, toPipe bool) (result, error) {
	port, err := freePort()
	if err != nil {
		return result{}, err
	}
	common := []string{"-q", "-s", "128k", "-m", cfg.mbufMem}
	recv := command(cfg.recvNS, "mbuffer", append(common, "-I", strconv.Itoa(port), "-o", "/dev/null")...)
	name := "mbuffer -s 128k -m " + cfg.mbufMem + " (no encryption)"
	if toPipe {
		recv = command(cfg.recvNS, "sh", append([]string{"-c", `exec mbuffer "$@" | cat >/dev/null`, "sh"}, append(common, "-I", strconv.Itoa(port))...)...)
		name = "mbuffer ... | cat (no encryption)"
	}
	recv.Stderr = os.Stderr
	if err := recv.Start(); err != nil {
		return result{}, err
	}
	recvRSS := watchRSS(recv.Process.Pid)
	defer recv.Process.Kill()
	if err := waitListening(recv.Process.Pid, port, 10*time.Second); err != nil {
		return result{}, err
	}
	dataR, dataW, err := dataPipe()
	if err != nil {
		return result{}, err
	}
	send := command(cfg.sendNS, "mbuffer", append(common, "-O", cfg.host+":"+strconv.Itoa(port))...)
	send.Stdin = dataR
	send.Stderr = os.Stderr
	start := time.Now()
	if err := send.Start(); err != nil {
		return result{}, err
	}
	sendRSS := watchRSS(send.Process.Pid)
	dataR.Close()
	fed := startFeed(dataW, cfg, cfg.size)
	sendErr := send.Wait()
	recvErr := recv.Wait()
	elapsed := time.Since(start)
	if sendErr != nil || recvErr != nil {
		return result{}, fmt.Errorf("send: %v, recv: %v", sendErr, recvErr)
	}
	f := <-fed
	if f.err != nil {
		return result{}, f.err
	}
	return result{
		name:    name,
		bytes:   f.n,
		elapsed: elapsed,
		send:    usageOf(send, sendRSS),
		recv:    usageOf(recv, recvRSS),
	}, nil
}
