package objstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// VerifyReader wraps a whole-object read: at EOF it checks the byte count
// against size (-1: unknown) and the SHA-256 against sha (hex, "": unknown)
// and turns a mismatch into a *CorruptError instead of io.EOF, so a
// consumer never mistakes damaged data for a complete object.
func VerifyReader(key string, rc io.ReadCloser, size int64, sha string) io.ReadCloser {
	if size < 0 && sha == "" {
		return rc
	}
	v := &verifyReader{rc: rc, key: key, size: size, want: sha}
	if sha != "" {
		v.h = sha256.New()
	}
	return v
}

type verifyReader struct {
	rc   io.ReadCloser
	key  string
	size int64
	want string
	h    hash.Hash
	n    int64
	err  error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if v.size >= 0 && v.n > v.size {
		v.err = &CorruptError{Key: v.key, Detail: fmt.Sprintf("more than the recorded %d bytes", v.size)}
		return n, v.err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		v.err = v.check()
		return n, v.err
	}
	return n, err
}

func (v *verifyReader) check() error {
	if v.size >= 0 && v.n != v.size {
		return &CorruptError{Key: v.key, Detail: fmt.Sprintf("truncated: %d of %d bytes", v.n, v.size)}
	}
	if v.h != nil {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return &CorruptError{Key: v.key, Detail: fmt.Sprintf("sha256 %s, recorded %s", got, v.want)}
		}
	}
	return io.EOF
}

func (v *verifyReader) Close() error { return v.rc.Close() }
