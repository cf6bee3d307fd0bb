package ca

import "errors"

// Sentinel errors of package ca, matched with errors.Is.
var (
	// ErrNotInitialized: the store holds no active intermediate with a key
	// (run Init first).
	ErrNotInitialized = errors.New("ca: not initialized")
	// ErrWrongKEK: a sealed key did not open; the key-encryption key is not
	// the one it was sealed under, or the ciphertext was altered.
	ErrWrongKEK = errors.New("ca: wrong key-encryption key or corrupted ciphertext")
	// ErrPolicy: the CSR is refused by policy; SCEP answers failInfo
	// badRequest (PROTOCOLS.md §1.5, §1.8).
	ErrPolicy = errors.New("ca: CSR refused by policy")
	// ErrTokenUsed: Issue was called twice with the same Token.
	ErrTokenUsed = errors.New("ca: token already used")
	// ErrRootKeyRemoved: the root private key is no longer in the store.
	ErrRootKeyRemoved = errors.New("ca: root key removed")
)
