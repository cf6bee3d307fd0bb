package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/challenge/intune"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
)

// maxBody caps every request body (PROTOCOLS.md §1.1).
const maxBody = 2 << 20

type serveOptions struct {
	dataOptions
	listen    string
	publicURL string
	logLevel  string
	validity  time.Duration
	jitter    time.Duration
	// intuneTimeout bounds each call to Entra ID, Graph and Intune.
	intuneTimeout time.Duration
	// attest configures the attestation verifier (serve_attest.go).
	attest attestOptions
	// metricsListen, when set, serves /metrics on its own listener too.
	metricsListen string
	// tlsCert and tlsKey, when set, make every listener TLS (tls.go).
	tlsCert, tlsKey string
	// insecureHTTP allows plain HTTP on a non-loopback address.
	insecureHTTP bool
	// revocation configures CRL and OCSP (serve_revocation.go).
	revocation revocationOptions
	// audit configures the stored audit log (serve_audit.go).
	audit auditOptions
}

// devIntegration is what --dev keeps of its default integration so that
// every `make run` can print a working SCEP URL and secret. Development only.
type devIntegration struct {
	ID        string `json:"id"`
	SCEPURL   string `json:"scepUrl"`
	SecretKey string `json:"secretKey"`
}

func runServe(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	var o serveOptions
	fs := o.flags(stderr)
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	tlsCfg, err := o.serverTLS(log)
	if err != nil {
		return err
	}
	kek, db, err := o.open(env, stderr)
	if err != nil {
		return err
	}
	defer db.Close()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	// The metrics listener is open before the banner, so a scraper told
	// the server is up is queued, not refused, until it serves.
	var mln net.Listener
	if o.metricsListen != "" {
		if mln, err = net.Listen("tcp", o.metricsListen); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		defer mln.Close()
	}
	if o.publicURL == "" {
		o.publicURL = "http://" + ln.Addr().String()
		if tlsCfg != nil {
			o.publicURL = "https://" + ln.Addr().String()
		}
	}

	m, metricsHandler := newMetrics()
	// st times every storage call (scepca_store_op_seconds); /readyz
	// checks the database itself.
	st := meteredStore{Store: db, observe: m.StoreOp}
	auditLog, err := newAuditLog(&o.audit, st, auditCounter{Handler: log.With("log", "audit").Handler(), m: m}, log, m)
	if err != nil {
		return err
	}
	defer auditLog.start(ctx)() // flushes the queued events before the store closes
	audit := auditLog.logger
	caCfg := o.caConfig(o.publicURL, audit)
	caCfg.Validity, caCfg.Jitter = o.validity, o.jitter
	if err := caCfg.Validate(); err != nil {
		return err
	}
	authority, created, err := initCA(ctx, st, db, kek, caCfg)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "initialised %q and %q in %s\n", authority.Root().Subject.CommonName, authority.Intermediate().Subject.CommonName, o.where())
	}
	revocation, revocationRoutes, err := newRevocation(&o.revocation, authority, st)
	if err != nil {
		return err
	}
	statusStore := statusNotifier{Store: st, changed: revocation.Changed}
	tokenHash, err := adminToken(&o.dataOptions, env, stdout)
	if err != nil {
		return err
	}
	intuneValidator, err := intune.New(intune.Config{Opener: kek, CallTimeout: o.intuneTimeout, CallerInfo: "scepca/" + version(), Logger: log, Observe: m.IntuneCall})
	if err != nil {
		return err
	}
	o.attest.observe = m.AttestVerify
	attestation, attestSweeper, err := newAttestation(&o.attest, statusStore, kek, log, audit)
	if err != nil {
		return err
	}
	api, err := admin.New(admin.Config{Store: statusStore, PublicURL: o.publicURL, TokenHashes: [][]byte{tokenHash}, Audit: audit, Dev: o.dev, Sealer: kek, Intune: intuneValidator, Attestation: attestation, CA: caLifecycle{authority, db}, Backup: hotBackup(db)})
	if err != nil {
		return err
	}
	dynamic, err := challenge.NewDynamic(challenge.DynamicConfig{Store: st, Audit: audit, Observe: m.DynamicChallenge})
	if err != nil {
		return err
	}
	svc, err := scep.NewService(scep.Config{
		CA:    scepAuthority{Authority: authority, rev: revocation},
		Store: statusStore,
		Validators: map[string]challenge.Validator{
			store.ChallengeStatic:  challenge.Static{},
			store.ChallengeDynamic: dynamic,
			store.ChallengeIntune:  intuneValidator,
		},
		Logger:   log,
		Audit:    audit,
		Observer: m,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	scep.NewHandler(svc).Register(mux)
	dynamic.Register(mux)
	api.Register(mux)
	revocationRoutes.Register(mux)
	mux.Handle("GET /metrics", metricsHandler)
	m.Outstanding(outstandingChallenges(st))
	m.CAExpiry(map[string]func() time.Time{
		"root":         func() time.Time { return authority.Root().NotAfter },
		"intermediate": func() time.Time { return authority.Intermediate().NotAfter },
		"ra":           func() time.Time { c, _ := authority.Recipient(); return c.NotAfter },
	})
	m.Expiring((&expiringCounter{certs: st, ttl: time.Minute, now: time.Now}).Value)
	(&readiness{store: db, integrations: st, recipient: authority.Recipient, intune: intuneValidator}).Register(mux)
	handler := reqlog.Middleware(log, nil)(scepMetrics(m, reqlog.Recover(reqlog.LimitBody(maxBody)(mux))))
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig:         tlsCfg,
	}

	fmt.Fprintf(stdout, "scepca %s listening on %s (public URL %s)\n", version(), ln.Addr(), o.publicURL)
	if o.dev {
		if err := devDefaultIntegration(ctx, &o, api, stdout); err != nil {
			return err
		}
	}

	// Background loops end with ctx; wait for them before returning.
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer background.Wait()
	defer stopBackground()
	background.Go(func() { _ = dynamic.Run(bgCtx) })
	background.Go(func() { _ = attestSweeper.Run(bgCtx) })
	if auditLog.sweeper != nil {
		background.Go(func() { _ = auditLog.sweeper.Run(bgCtx) })
	}
	background.Go(func() { _ = authority.Run(bgCtx) }) // picks up rotation steps of other replicas

	if mln != nil {
		metricsMux := http.NewServeMux()
		metricsMux.Handle("GET /metrics", metricsHandler)
		msrv := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: srv.ErrorLog, BaseContext: srv.BaseContext, TLSConfig: tlsCfg}
		fmt.Fprintf(stdout, "metrics on %s://%s/metrics\n", scheme(tlsCfg), mln.Addr())
		background.Go(func() { _ = serveHTTP(msrv, mln) })
		background.Go(func() {
			<-bgCtx.Done()
			_ = msrv.Close()
		})
	}

	errc := make(chan error, 1)
	go func() { errc <- serveHTTP(srv, ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// flags returns serve's flag set over o. `config check` parses the same
// set, and a config file may set any flag in it (config.go).
func (o *serveOptions) flags(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	registerConfig(fs)
	o.register(fs)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.publicURL, "public-url", "", "external base URL of this server (default http://<listen address>, https:// with --tls-cert)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.validity, "cert-validity", 365*24*time.Hour, "validity of issued certificates (integrations may override in days)")
	fs.DurationVar(&o.jitter, "cert-jitter", 0, "shorten each certificate's NotAfter by a random amount up to this, to spread renewals (at most half the validity)")
	fs.DurationVar(&o.intuneTimeout, "intune-timeout", intune.DefaultCallTimeout, "timeout of each call to Entra ID, Microsoft Graph and Intune (INTUNE integrations)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "also serve /metrics on this address (it is always on the main listener)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; reloaded when the file changes")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert; reloaded when the file changes")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback --listen or --metrics-listen (only behind a TLS-terminating proxy)")
	o.attest.register(fs)
	o.revocation.register(fs)
	o.audit.register(fs)
	return fs
}

// serverTLS returns the listeners' TLS configuration (nil for plain HTTP)
// after checking that plain HTTP stays on loopback unless --insecure-http.
func (o *serveOptions) serverTLS(log *slog.Logger) (*tls.Config, error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.tlsCert == "" {
		for _, addr := range []string{o.listen, o.metricsListen} {
			if addr == "" {
				continue
			}
			if err := checkPlainHTTP(addr, o.insecureHTTP); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	r, err := newCertReloader(o.tlsCert, o.tlsKey, log)
	if err != nil {
		return nil, err
	}
	return r.tlsConfig(), nil
}

// serveHTTP serves srv on ln, with TLS when srv has a configuration.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

func scheme(cfg *tls.Config) string {
	if cfg != nil {
		return "https"
	}
	return "http"
}

// adminToken returns the hash of the admin token: SCEPCA_ADMIN_TOKEN, else
// <data>/admin-token, created (mode 0600) when missing.
func adminToken(o *dataOptions, env func(string) string, stdout io.Writer) ([]byte, error) {
	if t := env("SCEPCA_ADMIN_TOKEN"); t != "" {
		return admin.TokenHash(admin.Token(t)), nil
	}
	path := filepath.Join(o.data, "admin-token")
	t, err := readTrimmed(path)
	if errors.Is(err, fs.ErrNotExist) {
		if t, err = randomToken(); err != nil {
			return nil, err
		}
		if err := writeSecretFile(path, t+"\n"); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		fmt.Fprintf(stdout, "admin token written to %s (mode 0600)\n", path)
	} else if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if t == "" {
		return nil, fmt.Errorf("admin token file %s is empty", path)
	}
	return admin.TokenHash(admin.Token(t)), nil
}

// devDefaultIntegration creates, on the first --dev start, a DESKTOP/STATIC
// integration and keeps its URL and secret in <data>/dev-integration.json
// (0600), so every `make run` prints a SCEP URL and secret a client can use
// at once. Production never stores a secret this way.
func devDefaultIntegration(ctx context.Context, o *serveOptions, api *admin.API, stdout io.Writer) error {
	path := filepath.Join(o.data, "dev-integration.json")
	var d devIntegration
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in, err := api.CreateIntegration(ctx, admin.IntegrationRequest{Name: "Default desktop (dev)", Platform: store.PlatformDesktop, ChallengeType: store.ChallengeStatic, Renewal: true})
		if err != nil {
			return err
		}
		d = devIntegration{ID: in.ID, SCEPURL: in.SCEPURL, SecretKey: in.SecretKey}
		out, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return err
		}
		if err := writeSecretFile(path, string(out)+"\n"); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		d.SCEPURL = api.SCEPURL(d.ID)
	}
	fmt.Fprintf(stdout, "\nDev integration (DESKTOP, STATIC challenge):\n  SCEP URL:   %s\n  Secret key: %s\n\nTry, in a fresh directory:\n  scepclient -server-url %s -challenge %s -private-key key.pem -certificate cert.pem -cn \"alice managementAttestation UDID123\"\n\n", d.SCEPURL, d.SecretKey, d.SCEPURL, d.SecretKey)
	return nil
}
