package auditlog

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of what one event stores: an attribute beyond maxDetails is left
// out, a longer value is cut.
const (
	maxDetails   = 32
	maxValueLen  = 1024
	maxTargetLen = 256
)

// secretWords are the key fragments Redacted drops. The secrets themselves
// are typed to print as "REDACTED" (STYLE.md §5); this is the net under
// that: a key that names a secret never reaches the event store, whatever
// its value.
var secretWords = []string{"secret", "password", "passwd", "token", "hint", "key", "credential", "private", "kek"}

// Redacted reports whether an attribute key looks like it holds a secret
// (secret, password, token, hint, key, credential, private, kek; any case), so
// its attribute is left out of the event's details.
func Redacted(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// details collects an event's attributes.
type details struct {
	m          map[string]string
	target     string
	actor      string
	outcome    string
	hasOutcome bool
}

func newDetails() *details { return &details{m: map[string]string{}} }

// add flattens a into the details: groups become dotted keys
// ("intune_validate.status"), snake_case keys become camelCase as in the
// API's JSON ("transaction_id" → "transactionId"). The top-level keys
// "target", "outcome" and "actor" fill the event's own fields.
func (d *details) add(prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range a.Value.Group() {
			d.add(p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	if prefix == "" {
		switch a.Key {
		case "target":
			d.target = cut(format(a.Value), maxTargetLen)
			return
		case "outcome":
			d.outcome, d.hasOutcome = cut(format(a.Value), maxTargetLen), true
			return
		case "actor":
			d.actor = cut(format(a.Value), maxTargetLen)
			return
		}
	}
	key := prefix + a.Key
	if Redacted(key) {
		return
	}
	key = camel(key)
	if _, ok := d.m[key]; !ok && len(d.m) >= maxDetails {
		return
	}
	d.m[key] = cut(format(a.Value), maxValueLen)
}

// format renders a resolved value as a string: times in RFC 3339 (UTC),
// errors by their text, lists and other structured values as JSON.
func format(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
			return ""
		case error:
			return x.Error()
		case fmt.Stringer:
			return x.String()
		case []byte:
			return fmt.Sprintf("%x", x)
		default:
			if b, err := json.Marshal(x); err == nil {
				return string(b)
			}
			return fmt.Sprint(x)
		}
	}
	return v.String()
}

// camel turns snake_case into camelCase: "ca_id" → "caId".
func camel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	var b strings.Builder
	up := false
	for _, r := range s {
		switch {
		case r == '_':
			up = b.Len() > 0
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
