package zfsexec

import "strings"

// Quote makes one argument safe for a POSIX shell: it is wrapped in single
// quotes, inside which the shell interprets nothing; an embedded single
// quote is written as '\”. The remote side of SSH always runs the command
// line through the user's shell, so every argv element goes through this.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == '/' || r == '@' || r == ':' || r == '=' || r == ',' || r == '+')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteArgv joins argv into one shell command line, each element quoted.
func QuoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
