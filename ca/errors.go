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
	// ErrBadRootKey: a root key supplied for one operation (Rotate) is
	// malformed or is not the root certificate's key.
	ErrBadRootKey = errors.New("ca: supplied root key is not the root's")
	// ErrLifecycle: the CA is not in a state that allows the operation
	// (rotate while a successor is staged, activate what is not staged,
	// delete the active intermediate).
	ErrLifecycle = errors.New("ca: not allowed in the certificate authority's state")
	// ErrBadRequest: an argument of a lifecycle operation is invalid.
	ErrBadRequest = errors.New("ca: invalid request")
)
