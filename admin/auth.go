package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token is a bearer token. It never prints.
type Token string

// String hides the token.
func (Token) String() string { return "REDACTED" }

// TokenHash is what scepca keeps of a token: its SHA-256. Tokens are
// 256-bit random values, so a fast hash suffices.
func TokenHash(t Token) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// requireToken answers 401 unless the request carries a bearer token whose
// hash is one of hashes. The comparison is constant-time per candidate.
func requireToken(hashes [][]byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			writeProblem(w, r, problemf(http.StatusUnauthorized, "missing bearer token"))
			return
		}
		got := TokenHash(Token(strings.TrimSpace(tok)))
		match := 0
		for _, h := range hashes {
			match |= subtle.ConstantTimeCompare(got, h)
		}
		if match != 1 {
			writeProblem(w, r, problemf(http.StatusUnauthorized, "invalid bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
