package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"zcloud/transfer"
)

func runZcloud(cfg config, size int64) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	sess, err := transfer.NewSession(cfg.cipher)
	if err != nil {
		return result{}, err
	}
	common := []string{"-role-streams", strconv.Itoa(cfg.streams), "-role-chunk", strconv.Itoa(cfg.chunk),
		"-role-window", strconv.Itoa(cfg.window),
		"-role-cpuprofile", cfg.profile, "-role-splice", cfg.splice, "-role-host", cfg.host}

	recv := command(cfg.recvNS, self, append([]string{"-role", "recv"}, common...)...)
	recv.Stderr = os.Stderr
	recvIn, err := recv.StdinPipe()
	if err != nil {
		return result{}, err
	}
	recvOut, err := recv.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := recv.Start(); err != nil {
		return result{}, err
	}
	recvRSS := watchRSS(recv.Process.Pid)
	defer recvIn.Close() // stdin stays open for the whole transfer, like an SSH session
	if err := transfer.WriteSession(recvIn, sess); err != nil {
		return result{}, err
	}
	line, err := bufio.NewReader(recvOut).ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("receiver did not announce its port: %w", err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, transfer.ListeningPrefix)))
	if err != nil {
		return result{}, fmt.Errorf("receiver said %q", line)
	}

	dataR, dataW, err := dataPipe()
	if err != nil {
		return result{}, err
	}
	sessR, sessW, err := os.Pipe()
	if err != nil {
		return result{}, err
	}
	send := command(cfg.sendNS, self, append([]string{"-role", "send", "-port", strconv.Itoa(port)}, common...)...)
	send.Stdin = dataR
	send.Stderr = os.Stderr
	send.ExtraFiles = []*os.File{sessR}
	start := time.Now()
	if err := send.Start(); err != nil {
		return result{}, err
	}
	sendRSS := watchRSS(send.Process.Pid)
	dataR.Close()
	sessR.Close()
	transfer.WriteSession(sessW, sess)
	sessW.Close()
	fed := startFeed(dataW, cfg, size)

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
	streams := fmt.Sprintf("%d streams", cfg.streams)
	if cfg.streams == 0 {
		streams = "automatic streams (default)"
	}
	return result{
		name:    fmt.Sprintf("zcloud %s, %s", cfg.cipher, streams),
		bytes:   f.n,
		elapsed: elapsed,
		send:    usageOf(send, sendRSS),
		recv:    usageOf(recv, recvRSS),
	}, nil
}
