package ec2

import (
	"bufio"
	"context"
	"encoding/base64"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"
)

// ConsoleOutput returns the instance's serial console text (the latest
// output where the hypervisor supports it).
func (c *Client) ConsoleOutput(ctx context.Context, instanceID string) (string, error) {
	out, err := c.api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(instanceID), Latest: aws.Bool(true)})
	if err != nil {
		return "", classify("console output of "+instanceID, err)
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return "", retryable("console output of "+instanceID, "", "bad base64: %v", err)
	}
	return string(b), nil
}

// Markers cloud-init prints around the host public keys on the console.
const (
	hostKeysBegin = "-----BEGIN SSH HOST KEY KEYS-----"
	hostKeysEnd   = "-----END SSH HOST KEY KEYS-----"
)

// ParseHostKeys extracts the SSH host public keys (authorized_keys format,
// comment dropped) from console output. Lines may carry prefixes such as
// "ec2: " or kernel timestamps. Only the last complete block counts: a
// reboot prints a new one, and the last is the current truth. No block
// yet gives nil.
func ParseHostKeys(console string) []string {
	var block, cur []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, hostKeysBegin):
			in, cur = true, nil
		case strings.Contains(line, hostKeysEnd):
			if in {
				block = cur
			}
			in = false
		case in:
			if k, ok := parseKeyLine(line); ok {
				cur = append(cur, k)
			}
		}
	}
	return block
}

// parseKeyLine finds "<type> <base64>" in line and checks it parses.
func parseKeyLine(line string) (string, bool) {
	for _, t := range []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", "ssh-dss"} {
		i := strings.Index(line, t+" ")
		if i < 0 {
			continue
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:]))
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), true
	}
	return "", false
}

// HostKeyOfType picks the key of keyType (e.g. "ssh-ed25519") from keys.
func HostKeyOfType(keys []string, keyType string) (string, bool) {
	for _, k := range keys {
		if strings.HasPrefix(k, keyType+" ") {
			return k, true
		}
	}
	return "", false
}
