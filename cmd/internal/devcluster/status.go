package devcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// ProcStatus is one process as `dev status` shows it.
type ProcStatus struct {
	Proc
	Alive bool   `json:"alive"`
	Role  string `json:"role"` // ZooKeeper mode, or bankd leader/follower; "" when it does not answer
}

// Status reads the state file and asks each process how it is.
func Status(dir string) (*State, []ProcStatus, error) {
	st, err := ReadState(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make([]ProcStatus, len(st.Procs))
	for i, p := range st.Procs {
		ps := ProcStatus{Proc: p, Alive: alive(p.PID)}
		if p.Kind == "zookeeper" {
			ps.Role = zkserver.Mode(p.Addr, zkClientTLS(st.Dir, st.Insecure))
		} else {
			ps.Role = bankdRole(probeClient(st.Dir), p)
		}
		out[i] = ps
	}
	return st, out, nil
}

func bankdRole(probe *http.Client, p Proc) string {
	resp, err := probe.Get(p.Addr + "/v1/cluster")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var cl struct {
		Self    string `json:"self"`
		Members []struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"members"`
	}
	if json.NewDecoder(resp.Body).Decode(&cl) != nil {
		return ""
	}
	for _, m := range cl.Members {
		if m.ID == cl.Self {
			return m.Role
		}
	}
	return "not a member"
}

// Down asks the supervisor to stop the cluster and waits until it did.
// When the supervisor is gone, it kills the processes it left behind.
func Down(dir string, within time.Duration) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if alive(st.Supervisor) {
		syscall.Kill(st.Supervisor, syscall.SIGTERM)
		deadline := time.Now().Add(within)
		for alive(st.Supervisor) {
			if time.Now().After(deadline) {
				return fmt.Errorf("devcluster: supervisor %d still running after %v", st.Supervisor, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}
	for _, p := range st.Procs {
		if alive(p.PID) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	return removeState(dir)
}
