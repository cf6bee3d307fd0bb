package auditlog

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// idPattern is the form of NewEventID.
var idPattern = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{8}$`)

// NewEventID returns an event ID for an event at t: 16 lower-case hex
// digits of t's UnixNano, "-", and 8 random hex digits. The IDs are fixed
// width, so their byte order is time order (for times from 1970 to 2554),
// and the random part keeps IDs of the same nanosecond on different
// replicas apart.
func NewEventID(t time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%016x-%s", uint64(t.UnixNano()), hex.EncodeToString(r[:]))
}

// ValidEventID reports whether id has the form of NewEventID; the admin API
// takes such an ID as its pagination cursor.
func ValidEventID(id string) bool { return idPattern.MatchString(id) }
