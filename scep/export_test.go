package scep

// ErrUnparsable exposes errUnparsable to the external tests, which check
// that every parse failure wraps it (it is what the handler answers with
// HTTP 400).
var ErrUnparsable = errUnparsable
