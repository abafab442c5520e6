// Command sessionworker is a zcloud worker for the session tests only: it
// is `zcloud worker` plus the two test seams that make a moto "instance"
// the local sshd (activities.DialTarget maps every target address to
// --ssh-addr; activities.HostKeyGen injects the sshd's own host key, which
// the session then pins and verifies). Production never builds it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"zcloud/activities"
	"zcloud/cloud/ec2"
	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/logging"
	"zcloud/workerapp"
	"zcloud/zfsexec"
)

func main() {
	cfgPath := flag.String("config", "", "zcloud config")
	sshAddr := flag.String("ssh-addr", "", "host:port every target address is mapped to")
	keyFile := flag.String("host-key-file", "", "private host key the sshd serves (injected as if at launch)")
	keyPub := flag.String("host-key-pub", "", "its public key line")
	flag.Parse()
	if err := run(*cfgPath, *sshAddr, *keyFile, *keyPub); err != nil {
		fmt.Fprintln(os.Stderr, "sessionworker:", err)
		os.Exit(1)
	}
}

func run(cfgPath, sshAddr, keyFile, keyPub string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	cl, err := tclient.Dial(cfg.Temporal, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	host, portStr, err := net.SplitHostPort(sshAddr)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	priv, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	acts := activities.New(cfg, log)
	acts.DialTarget = func(_ string, sc zfsexec.SSHConfig) (zfsexec.SSHConfig, error) {
		sc.Host, sc.Port = host, port
		return sc, nil
	}
	acts.HostKeyGen = func() (ec2.HostKey, error) { return ec2.HostKey{PrivatePEM: string(priv), Public: keyPub}, nil }
	w := workerapp.New(cl, cfg, acts)
	if err := w.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	w.Stop()
	return nil
}
