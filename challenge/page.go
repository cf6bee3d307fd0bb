package challenge

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"unicode/utf16"

	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// ChallengePath is the challenge URL path of an integration, NDES-shaped so
// it reads naturally in Jamf's "URL To SCEP Admin" (PROTOCOLS.md §2.6).
func ChallengePath(integrationID string) string {
	return "/certsrv/mscep_admin/" + integrationID + "/"
}

// Register adds the challenge page routes to mux (GET and POST, with and
// without the trailing slash).
func (d *Dynamic) Register(mux *http.ServeMux) {
	for _, p := range []string{"/certsrv/mscep_admin/{id}", "/certsrv/mscep_admin/{id}/{$}"} {
		mux.Handle("GET "+p, d)
		mux.Handle("POST "+p, d)
	}
}

// Page phrases clients match by substring (PROTOCOLS.md §2.3).
const (
	phrasePassword   = "The enrollment challenge password is: <B> %s </B>"
	phraseCacheFull  = "The password cache is full."
	phrasePermission = "You do not have sufficient permission to enroll with SCEP."
)

// ServeHTTP serves the NDES-compatible challenge page: HTTP Basic with the
// integration's username and password (compared in constant time; after a
// reset with an overlap window the replaced password too, until the window
// ends), then a fresh one-time challenge. Failed logins are throttled per source address.
func (d *Dynamic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	source := sourceAddr(r)
	reqlog.Add(ctx, slog.String(reqlog.KeyIntegrationID, id), slog.String(reqlog.KeyOperation, "challenge"))
	audit := func(result string) {
		outcome := "failure"
		if result == "minted" {
			outcome = "success"
		}
		d.audit.InfoContext(ctx, "challenge.fetch", "target", id, "remote", source, "result", result, "outcome", outcome)
	}
	if wait, blocked := d.throttle.Blocked(source); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		http.Error(w, "too many failed logins; try again later", http.StatusTooManyRequests)
		d.observe(EventRejected, "throttled")
		audit("throttled")
		return
	}
	integ, err := d.store.GetIntegration(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (integ.ChallengeType != store.ChallengeDynamic || integ.Deleted())) {
		d.writePage(w, nil, permissionBody)
		audit("unknown_integration")
		return
	}
	if err != nil {
		reqlog.Add(ctx, slog.String(reqlog.KeyError, err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		// An anonymous probe (go-ntlmssp's negotiator sends one first) is not
		// a failed login: it learns that Basic is wanted and retries.
		unauthorized(w)
		audit("no_credentials")
		return
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(integ.Username))
	passOK := CheckIntegrationSecret(integ, Secret(pass), d.now())
	if userOK != 1 || !passOK || integ.Username == "" {
		d.throttle.Fail(source)
		d.observe(EventRejected, "bad_credentials")
		unauthorized(w)
		audit("bad_credentials")
		return
	}
	d.throttle.Succeed(source)
	if !integ.Enabled {
		d.writePage(w, integ, permissionBody)
		audit("disabled")
		return
	}
	pw, err := d.Mint(ctx, integ)
	if errors.Is(err, ErrCacheFull) {
		d.writePage(w, integ, cacheFullBody)
		audit("cache_full")
		return
	}
	if err != nil {
		reqlog.Add(ctx, slog.String(reqlog.KeyError, err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.writePage(w, integ, passwordBody(pw, ttl(integ).Minutes()))
	audit("minted")
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="scepca", charset="UTF-8"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// sourceAddr is the client's IP address (port dropped), the throttling key.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

const pageHead = `<HTML><Head><Meta HTTP-Equiv="Content-Type" Content="text/html; charset=UTF-8">
<Title>Network Device Enrollment Service</Title></Head>
<Body BgColor=#FFFFFF><Font ID=locPageFont Face="Arial">
<P ID=locPageTitle> Network Device Enrollment Service allows you to obtain certificates for routers or other network devices using the Simple Certificate Enrollment Protocol (SCEP). </P>
`

const pageTail = `</Font></Body></HTML>
`

func passwordBody(pw Secret, minutes float64) string {
	return "<P> " + fmt.Sprintf(phrasePassword, html.EscapeString(pw.Reveal())) +
		" <P> This password can be used only once and will expire within " + strconv.Itoa(int(minutes)) + " minutes." +
		" <P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>\n"
}

const cacheFullBody = "<P> " + phraseCacheFull + " You can wait until one of the passwords is used or expires, or ask the administrator to raise the limit. </P>\n"

const permissionBody = "<P> " + phrasePermission + " Please contact your system administrator. </P>\n"

// writePage answers 200 with the page: UTF-8 by default, or NDES's own
// bytes (UTF-16LE, no BOM, no charset) when the integration asks for them.
func (d *Dynamic) writePage(w http.ResponseWriter, integ *store.Integration, body string) {
	page := pageHead + body + pageTail
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if integ != nil && integ.NDESEncoding {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(utf16LE(page))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(page))
}

// utf16LE encodes s as UTF-16 little-endian without a byte-order mark.
func utf16LE(s string) []byte {
	units := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		out = append(out, byte(u), byte(u>>8)) //nolint:gosec // G115: splitting a UTF-16 code unit into its two bytes is the point
	}
	return out
}
