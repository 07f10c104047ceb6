package engine

import "sort"

// RevocationsMax bounds the certificates the state may hold revoked: a
// revocation past it is limit_exceeded.
const RevocationsMax = 100_000

// Revocation is a revoked certificate and the index it was revoked at:
// from the next index on, nothing it signs or sends is taken.
type Revocation struct {
	Serial string
	Index  uint64
}

// revocations is the set of revoked certificates, replicated like every
// other part of the state (revoked through the log, so every node refuses
// a certificate from the same index on).
type revocations struct {
	bySerial map[string]uint64
}

func (r *revocations) add(serial string, index uint64) {
	if r.bySerial == nil {
		r.bySerial = map[string]uint64{}
	}
	r.bySerial[serial] = index
}

// sorted lists the revocations in serial order (the state's encoding).
func (r *revocations) sorted() []Revocation {
	out := make([]Revocation, 0, len(r.bySerial))
	for s, i := range r.bySerial {
		out = append(out, Revocation{Serial: s, Index: i})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out
}

// Revoked reports whether the certificate with serial is revoked, and at
// which index.
func (e *Engine) Revoked(serial string) (uint64, bool) {
	i, ok := e.revoked.bySerial[serial]
	return i, ok
}

// Revocations lists the revoked certificates in serial order.
func (e *Engine) Revocations() []Revocation { return e.revoked.sorted() }

// revoke records a certificate as revoked. Revoking it again is ok and
// keeps the first index.
func (e *Engine) revoke(index uint64, c *Command) Result {
	if code := checkSerial(c.Serial); code != CodeOK {
		return rejected(code)
	}
	if _, done := e.revoked.bySerial[c.Serial]; done {
		return Result{Code: CodeOK}
	}
	if len(e.revoked.bySerial) >= RevocationsMax {
		return rejected(CodeLimitExceeded)
	}
	e.revoked.add(c.Serial, index)
	return Result{Code: CodeOK}
}
