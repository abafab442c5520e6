package vault_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"zcloud/cloud/objstore/vault"
)

// multipartShim is a TEST FAKE for the four vault multipart calls moto
// does not implement (initiate, upload part, complete, abort). It keeps
// parts in memory, checks what AWS checks and moto does not (part size a
// power-of-two MiB, ranges aligned to it, every part's tree hash, the
// archive's size and tree hash), and on complete uploads the assembled
// archive to moto with UploadArchive, so the archive is then a real moto
// archive: retrieval jobs and job output are moto's. Every other request
// is proxied to moto untouched.
type multipartShim struct {
	moto  *url.URL
	proxy *httputil.ReverseProxy

	mu        sync.Mutex
	next      int
	uploads   map[string]*shimUpload
	Completed int // multipart uploads completed, for assertions
}

type shimUpload struct {
	path, desc string
	partSize   int64
	parts      map[int64][]byte // by offset
}

func newMultipartShim(t *testing.T, motoEndpoint string) *httptest.Server {
	u, err := url.Parse(motoEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	s := &multipartShim{moto: u, proxy: httputil.NewSingleHostReverseProxy(u), uploads: map[string]*shimUpload{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	shims[srv.URL] = s
	return srv
}

var shims = map[string]*multipartShim{}

func (s *multipartShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base, id, isMP := strings.Cut(r.URL.Path, "/multipart-uploads")
	if !isMP {
		s.proxy.ServeHTTP(w, r)
		return
	}
	id = strings.TrimPrefix(id, "/")
	switch {
	case r.Method == http.MethodPost && id == "":
		s.initiate(w, r, base)
	case r.Method == http.MethodPut && id != "":
		s.part(w, r, id)
	case r.Method == http.MethodPost && id != "":
		s.complete(w, r, id)
	case r.Method == http.MethodDelete && id != "":
		s.mu.Lock()
		delete(s.uploads, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "shim: unsupported multipart call", http.StatusNotImplemented)
	}
}

func shimError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"code":"InvalidParameterValueException","message":%q,"type":"Client"}`, msg)
}

func (s *multipartShim) initiate(w http.ResponseWriter, r *http.Request, base string) {
	ps, err := strconv.ParseInt(r.Header.Get("x-amz-part-size"), 10, 64)
	if err != nil || ps < vault.MiB || ps > 4<<30 || ps&(ps-1) != 0 {
		shimError(w, 400, "part size must be 1 MiB × 2^n up to 4 GiB")
		return
	}
	s.mu.Lock()
	s.next++
	id := fmt.Sprintf("shim-upload-%d", s.next)
	s.uploads[id] = &shimUpload{path: base, desc: r.Header.Get("x-amz-archive-description"), partSize: ps, parts: map[int64][]byte{}}
	s.mu.Unlock()
	w.Header().Set("x-amz-multipart-upload-id", id)
	w.Header().Set("Location", base+"/multipart-uploads/"+id)
	w.WriteHeader(http.StatusCreated)
}

func (s *multipartShim) part(w http.ResponseWriter, r *http.Request, id string) {
	body, _ := io.ReadAll(r.Body)
	var first, last int64
	if _, err := fmt.Sscanf(r.Header.Get("Content-Range"), "bytes %d-%d/*", &first, &last); err != nil {
		shimError(w, 400, "bad Content-Range "+r.Header.Get("Content-Range"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	switch {
	case u == nil:
		shimError(w, 404, "no such upload")
	case first%u.partSize != 0 || last-first+1 != int64(len(body)) || int64(len(body)) > u.partSize:
		shimError(w, 400, "range not aligned to the part size or not matching the body")
	case treeHex(body) != r.Header.Get("x-amz-sha256-tree-hash"):
		shimError(w, 400, "part tree hash mismatch")
	default:
		u.parts[first] = body
		w.Header().Set("x-amz-sha256-tree-hash", treeHex(body))
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *multipartShim) complete(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	u := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if u == nil {
		shimError(w, 404, "no such upload")
		return
	}
	offs := make([]int64, 0, len(u.parts))
	for o := range u.parts {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var all bytes.Buffer
	for _, o := range offs {
		if o != int64(all.Len()) {
			shimError(w, 400, "missing part")
			return
		}
		all.Write(u.parts[o])
	}
	if strconv.Itoa(all.Len()) != r.Header.Get("x-amz-archive-size") || treeHex(all.Bytes()) != r.Header.Get("x-amz-sha256-tree-hash") {
		shimError(w, 400, "archive size or tree hash mismatch")
		return
	}
	req, _ := http.NewRequest(http.MethodPost, s.moto.String()+u.path+"/archives", bytes.NewReader(all.Bytes()))
	req.Header.Set("x-amz-archive-description", u.desc)
	req.Header.Set("x-amz-sha256-tree-hash", treeHex(all.Bytes()))
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		shimError(w, 500, err.Error())
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"x-amz-archive-id", "Location"} {
		w.Header().Set(h, resp.Header.Get(h))
	}
	w.Header().Set("x-amz-sha256-tree-hash", treeHex(all.Bytes()))
	s.mu.Lock()
	s.Completed++
	s.mu.Unlock()
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func treeHex(b []byte) string { h := vault.TreeHash(b); return hex.EncodeToString(h[:]) }
