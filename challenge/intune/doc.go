// Package intune delegates SCEP challenge validation to Microsoft Intune
// (PROTOCOLS.md §3): it fetches Entra ID client-credentials tokens, finds
// Intune's SCEP validation service through Microsoft Graph, and calls its
// ScepActions validateRequest, successNotification and failureNotification.
// It is the only package that knows Microsoft's API.
//
// It owns the Intune client of each integration (tokens and the discovered
// service URI are cached there), the wire format, and the test-connection
// diagnosis. It does not sign, store certificates or parse SCEP messages:
// the scep service calls Validate before signing and NotifySuccess before
// handing a certificate out, and decides what a failure means for the
// client. Every failure is fail-closed: no answer means no certificate.
//
// Security invariants: the client secret is held only as a ClientSecret
// (and access tokens only as an unexported token type) whose String and
// LogValue print "REDACTED"; error texts never carry either; redirects are
// never followed, so a bearer token or the secret goes only to the
// configured authority, Graph and the Intune URI Graph named, and plain
// http is accepted only towards a loopback address.
package intune
