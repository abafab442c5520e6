package keys

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// window is how many consecutive bytes of a secret make a line suspect: long
// enough that ordinary words never match a random key, short enough that a
// partial echo is caught.
const window = 8

// Withheld replaces each line of command output that carries key material.
const Withheld = "[line withheld: it carries key material]"

// Redact returns text with every line that holds secret material replaced by
// Withheld. A line is withheld when it contains any 8 consecutive bytes of
// the secret, or of its hex or base64 form (how helpers commonly print
// keys); a secret shorter than 8 bytes is matched whole. Use it on the error
// output of a command that was given the secret on stdin, before that output
// can reach an error, a log or the workflow history.
func Redact(text string, secret []byte) string {
	s := strings.TrimSpace(string(secret))
	if s == "" || text == "" {
		return text
	}
	forms := []string{s, hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)}
	w := min(window, len(s))
	pieces := map[string]bool{}
	for _, f := range forms {
		for i := 0; i+w <= len(f); i++ {
			pieces[f[i:i+w]] = true
		}
	}
	lines := strings.Split(text, "\n")
	for n, line := range lines {
		for i := 0; i+w <= len(line); i++ {
			if pieces[line[i:i+w]] {
				lines[n] = Withheld
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}
