package staging

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// magic starts every staged file's plaintext, before its JSON header line.
const magic = "zcloud-staged v1\n"

// Entry types a staged file can stand for.
const (
	TypeFile    = "file"
	TypeSymlink = "symlink"
)

// Header is the first line of a staged file's plaintext: what the file
// stands for. The source content follows it, unchanged, so
// `age -d -i KEY FILE | tail -n +3` gives the original bytes without zcloud.
type Header struct {
	Type    string `json:"type"`             // TypeFile or TypeSymlink
	Mode    uint32 `json:"mode"`             // permission bits (07777)
	MtimeNs int64  `json:"mtime_ns"`         // modification time, ns since the epoch
	Size    int64  `json:"size"`             // content bytes that follow (files)
	Target  string `json:"target,omitempty"` // symlink target
}

// writeStaged encrypts h and then content (exactly h.Size bytes) to w.
func writeStaged(w io.Writer, rcpts []age.Recipient, h Header, content io.Reader) error {
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	ew, err := age.Encrypt(w, rcpts...)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(ew, magic+string(hb)+"\n"); err != nil {
		return err
	}
	if content != nil {
		n, err := io.Copy(ew, io.LimitReader(content, h.Size))
		if err != nil {
			return err
		}
		if n != h.Size {
			return fmt.Errorf("%w: read %d of %d bytes", errChanged, n, h.Size)
		}
	}
	return ew.Close()
}

// errChanged: the source changed size while it was read (a live source, not
// a snapshot).
var errChanged = errors.New("source file changed while it was read")

var errTruncated = errors.New("staged file is shorter than its header says")

// ErrWrongKey: none of the supplied identities opens a staged file.
var ErrWrongKey = errors.New("staging: the private key does not match the staged file's recipients")

// ReadStaged decrypts a staged file: its header, and a reader of its
// content that fails unless exactly Header.Size bytes follow.
func ReadStaged(r io.Reader, ids []age.Identity) (Header, io.Reader, error) {
	dr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return Header{}, nil, ErrWrongKey
		}
		return Header{}, nil, fmt.Errorf("decrypt: %w", err)
	}
	br := bufio.NewReaderSize(dr, 64<<10)
	m, err := br.ReadString('\n')
	if err != nil || m != magic {
		return Header{}, nil, fmt.Errorf("not a zcloud staged file (bad magic %q)", m)
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return Header{}, nil, fmt.Errorf("staged file header: %w", err)
	}
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return Header{}, nil, fmt.Errorf("staged file header: %w", err)
	}
	if h.Type != TypeFile && h.Type != TypeSymlink {
		return Header{}, nil, fmt.Errorf("staged file header: unknown type %q", h.Type)
	}
	return h, &exactReader{r: br, left: h.Size}, nil
}

// exactReader yields left bytes and then insists the stream ends there.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		var one [1]byte
		if n, err := e.r.Read(one[:]); n > 0 {
			return 0, errors.New("staged file is longer than its header says")
		} else if err != nil && err != io.EOF {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, errTruncated
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
