package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Bearer tokens are "zkb_" and 43 characters of base64url: 256 random
// bits. The bank's state holds their SHA-256 only.
const (
	TokenPrefix = "zkb_"
	tokenLen    = len(TokenPrefix) + 43
)

// NewToken makes a token's secret.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenHash is the SHA-256 of a token, as the state keeps it.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// TokenHashHex is TokenHash in hex, as TokenRequest.SecretSHA256 takes it.
func TokenHashHex(token string) string {
	h := TokenHash(token)
	return hex.EncodeToString(h[:])
}

// WellFormedToken reports whether tok has a token's form.
func WellFormedToken(tok string) bool {
	if len(tok) != tokenLen || !strings.HasPrefix(tok, TokenPrefix) {
		return false
	}
	for _, c := range []byte(tok[len(TokenPrefix):]) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
