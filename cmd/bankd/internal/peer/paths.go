package peer

import (
	"errors"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// Paths of the endpoints nodes call on each other.
const (
	SubmitPath    = "/internal/v2/submit" // the binary format in and out
	ReadIndexPath = "/internal/v1/read-index"
	EntriesPath   = "/internal/v1/entries"
	SnapshotPath  = "/internal/v1/snapshot"
	KeysPath      = "/internal/v1/keys"
)

// Codes of the problems the internal endpoints answer with, and the
// node errors they stand for on the other end.
var problemCodes = []struct {
	err  error
	code string
}{
	{node.ErrNotLeader, wire.CodeNotLeader},
	{node.ErrOverloaded, wire.CodeOverloaded},
	{node.ErrTooLarge, wire.CodeBatchTooLarge},
	{node.ErrLeadershipLost, wire.CodeOutcomeUnknown},
	{node.ErrOutcomeUnknown, wire.CodeOutcomeUnknown},
	{node.ErrStopped, wire.CodeNotReady},
}

// problemFor is the answer to a node error.
func problemFor(err error) *wire.Problem {
	for _, pc := range problemCodes {
		if errors.Is(err, pc.err) {
			return wire.NewProblem(pc.code, err.Error())
		}
	}
	return wire.NewProblem(wire.CodeInternal, err.Error())
}

// errorFor is the node error a problem answer stands for; ok is false
// for other problems, which come back as they are.
func errorFor(p *wire.Problem) (err error, ok bool) {
	switch p.Code {
	case wire.CodeNotReady: // a stopping node did not take the commands
		return node.ErrNotLeader, true
	case wire.CodeOutcomeUnknown:
		return node.ErrLeadershipLost, true
	}
	for _, pc := range problemCodes {
		if pc.code == p.Code {
			return pc.err, true
		}
	}
	return nil, false
}
