package zkcoord

import (
	"sync"

	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// ServerState is what one ZooKeeper server says of itself.
type ServerState struct {
	Addr string `json:"addr"`
	Mode string `json:"mode"` // leader, follower or standalone; "" when it does not answer
}

// Serving reports whether the server serves clients.
func (s ServerState) Serving() bool { return zkserver.Serving(s.Mode) }

// Servers asks every configured server for its role (the `srvr`
// four-letter command), at once.
func (s *Session) Servers() []ServerState {
	out := make([]ServerState, len(s.cfg.Servers))
	var wg sync.WaitGroup
	for i, addr := range s.cfg.Servers {
		out[i].Addr = addr
		wg.Go(func() { out[i].Mode = zkserver.Mode(addr, s.cfg.TLS) })
	}
	wg.Wait()
	return out
}

// ConnectedServer is the server the session talks to now ("" when none).
func (s *Session) ConnectedServer() string {
	if !s.Connected() {
		return ""
	}
	return s.Conn.Server()
}
