package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
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
		"-role-cpuprofile", cfg.profile, "-role-splice", cfg.splice}

	recv := exec.Command(self, append([]string{"-role", "recv"}, common...)...)
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
	send := exec.Command(self, append([]string{"-role", "send", "-port", strconv.Itoa(port)}, common...)...)
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
	feedErr := make(chan error, 1)
	go func() { feedErr <- feed(dataW, size) }()

	sendErr := send.Wait()
	recvErr := recv.Wait()
	elapsed := time.Since(start)
	if sendErr != nil || recvErr != nil {
		return result{}, fmt.Errorf("send: %v, recv: %v", sendErr, recvErr)
	}
	if err := <-feedErr; err != nil {
		return result{}, err
	}
	return result{
		name:    fmt.Sprintf("zcloud %s, %d streams", cfg.cipher, cfg.streams),
		bytes:   size,
		elapsed: elapsed,
		send:    usageOf(send, sendRSS),
		recv:    usageOf(recv, recvRSS),
	}, nil
}
