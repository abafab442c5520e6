package vmhost

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpConn is a minimal QMP client: one command at a time, events kept for
// waitEvent.
type qmpConn struct {
	c      net.Conn
	r      *bufio.Reader
	events []qmpMsg
	nextID int
	unlock func()
}

type qmpMsg struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    any             `json:"id"`
	QMP   json.RawMessage `json:"QMP"`
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func dialQMP(sock string, timeout time.Duration) (*qmpConn, error) {
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return nil, fmt.Errorf("vmhost: qmp: %w", err)
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(timeout))
	greeting, err := q.read()
	if err != nil || greeting.QMP == nil {
		c.Close()
		return nil, fmt.Errorf("vmhost: qmp: no greeting: %v", err)
	}
	if _, err := q.exec("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) close() {
	q.c.Close()
	if q.unlock != nil {
		q.unlock()
		q.unlock = nil
	}
}

func (q *qmpConn) read() (qmpMsg, error) {
	var m qmpMsg
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("qmp: bad message %q: %w", line, err)
	}
	return m, nil
}

// exec runs one command and returns its "return" value.
func (q *qmpConn) exec(command string, args map[string]any) (json.RawMessage, error) {
	q.nextID++
	id := fmt.Sprintf("zcloud-%d", q.nextID)
	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	_ = q.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		m, err := q.read()
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		if m.Event != "" {
			q.events = append(q.events, m)
			continue
		}
		if m.ID != id {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", command, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	}
}

// waitEvent waits for event name whose data.device (or data.path) is device.
func (q *qmpConn) waitEvent(name, device string, timeout time.Duration) error {
	match := func(m qmpMsg) bool {
		if m.Event != name {
			return false
		}
		var d struct {
			Device string `json:"device"`
			Path   string `json:"path"`
		}
		_ = json.Unmarshal(m.Data, &d)
		return d.Device == device || (device == "" && d.Path != "")
	}
	for _, m := range q.events {
		if match(m) {
			return nil
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		_ = q.c.SetDeadline(deadline)
		m, err := q.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("qmp: no %s event for %s within %s", name, device, timeout)
			}
			return err
		}
		if match(m) {
			return nil
		}
	}
}
