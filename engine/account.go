package engine

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Account is the state of one account. Balance is in minor units (cents).
type Account struct {
	Number       string
	Name         string
	Balance      uint64
	CreatedIndex uint64 // log index of the entry that created it
	UpdatedIndex uint64 // log index of the entry that last changed it
	Frozen       bool   // no money moves in or out (body version 4 and later)
	Held         uint64 // of Balance, what open holds from it reserve (body version 5 and later)
}

// Available is the money withdrawals, transfers and new holds may use.
func (a Account) Available() uint64 { return a.Balance - a.Held }

// ValidAccountNumber reports whether s is 1..34 characters of [0-9A-Za-z-].
func ValidAccountNumber(s string) bool {
	if len(s) == 0 || len(s) > AccountNumberLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// NormalizeName trims surrounding space and reports whether the rest is a
// valid name: valid UTF-8, 1..200 characters, no control characters.
func NormalizeName(s string) (string, bool) {
	if NameProblem(s) != "" {
		return "", false
	}
	return strings.TrimSpace(s), true
}

// NameProblem says what is wrong with a name, in words ("" for a valid
// one), so that a refusal can say why.
func NameProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	s = strings.TrimSpace(s)
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) {
			return "holds a control character"
		}
		n++
	}
	switch {
	case n == 0:
		return "is empty (spaces alone do not make a name)"
	case n > NameRunesMax:
		return "is longer than 200 characters"
	}
	return ""
}

// ValidAmount reports whether a is a usable amount: 1..MaxAmount.
func ValidAmount(a uint64) bool { return a >= 1 && a <= MaxAmount }

// ValidKey reports whether k is a usable idempotency key: 1..64 visible
// ASCII characters.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > KeyLenMax {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// formatAssigned renders an assigned account number, zero-padded.
func formatAssigned(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= AssignedNumberWidth {
		return s
	}
	return strings.Repeat("0", AssignedNumberWidth-len(s)) + s
}

// maxAssigned is the last number that still fits the fixed width.
const maxAssigned = 9_999_999_999
