package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/metrics"
	"github.com/ctsync/ctsync/stats"
	"github.com/spf13/cobra"
)

func addDaemonCommand(root *cobra.Command, s *streams) {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a ctsync node in the foreground",
		Long: `Run a ctsync node in the foreground: serve this host's conntrack table, replicate
its flows to the cluster, keep the peers' flows, and answer the control socket.

SIGTERM or SIGINT leave the cluster gracefully; SIGHUP reloads the filter and
the log level from the configuration file. With systemd, use Type=notify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			return runDaemon(cmd.Context(), path, s.err)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance work)")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	root.AddCommand(cmd)
}

// newLogger builds the daemon's logger; level can change at run time.
func newLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// runDaemon runs the daemon until ctx is cancelled: configuration, the
// control socket and metrics address (bound first, so a second daemon or a
// taken port stops here), then the agent and what serves it.
func runDaemon(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := loadDaemonConfig(path, stderr)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.Log, level).With("node", cfg.Node)

	srv, err := listenControl(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	ms, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	if ms != nil {
		defer ms.Close()
	}

	bi := currentBuildInfo()
	a, err := agent.New(agent.Options{Config: cfg, Logger: log,
		Build: agent.BuildInfo{Version: bi.Version, Commit: bi.Commit, GoVersion: bi.GoVersion}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHUP(ctx, hup, path, a, level, log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, a, log) }()
	go notifyWhenReady(ctx, a, log)
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if ms == nil {
			return
		}
		if err := ms.Serve(ctx, statsSource(a, srv), log); err != nil {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()

	logArgs := []any{"version", version, "cluster", a.Addr(), "control", cfg.Control.Socket}
	if ms != nil {
		logArgs = append(logArgs, "metrics", "http://"+ms.Addr().String()+"/metrics")
	}
	log.Info("ctsync daemon starting", logArgs...)
	err = a.Run(ctx)
	sdNotify("STOPPING=1")
	cancel()
	if serr := <-serveErr; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	<-metricsDone // scrapes in flight end within metrics' grace
	log.Info("ctsync daemon stopped")
	return err
}

// loadDaemonConfig loads and checks the configuration; its problems go to
// stderr, one a line.
func loadDaemonConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Check(path)
	if err == nil {
		return cfg, nil
	}
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(stderr, p.String())
		}
		return nil, fmt.Errorf("config %s has %d problems; fix them (ctsync config check)", path, len(ps))
	}
	return nil, err
}

// listenControl takes the control socket's lock first: a second daemon stops
// here, before it touches the cluster port or the kernel.
func listenControl(cfg *config.Config) (*control.Server, error) {
	srv, err := control.Listen(cfg.Control.Socket)
	if err != nil {
		for _, w := range cfg.Warnings() {
			if w.Path == "control.socket" {
				err = fmt.Errorf("%w (%s)", err, w) // why, under the shipped unit
			}
		}
		return nil, err
	}
	return srv, nil
}

// listenMetrics binds the metrics address, if one is configured (nil
// otherwise), before anything starts, for the same reason as the control
// socket: a port that cannot be bound stops the daemon early.
func listenMetrics(cfg *config.Config) (*metrics.Server, error) {
	if cfg.Metrics.Listen == "" {
		return nil, nil
	}
	ms, err := metrics.Listen(cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot serve Prometheus metrics: %w", err)
	}
	return ms, nil
}

// reloadOnHUP reloads the configuration on every SIGHUP until ctx is done;
// a configuration with problems is refused and the running one kept.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, path string, a *agent.Agent, level *slog.LevelVar, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			nc, err := config.Check(path)
			if err != nil {
				log.Error("reload refused: configuration has problems; keeping the running one", "err", err)
				continue
			}
			level.Set(parseLevel(nc.Log.Level))
			if err := a.Reload(nc); err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}
}

// statsSource is what the metrics endpoint reads: the agent's statistics
// with the control socket's, as `ctsync stats` shows them.
func statsSource(a *agent.Agent, srv *control.Server) metrics.Source {
	return func(ctx context.Context) (stats.Stats, error) { return srv.Stats(ctx, a) }
}

// notifyWhenReady tells systemd READY=1 once the agent has loaded the
// kernel table, then pings the watchdog while the agent's loop answers.
func notifyWhenReady(ctx context.Context, a *agent.Agent, log *slog.Logger) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.Ready() {
			break
		}
	}
	sdNotify("READY=1")
	log.Info("ready")
	interval := watchdogInterval()
	if interval <= 0 {
		return
	}
	w := time.NewTicker(interval / 2)
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
			if a.Alive(ctx) {
				sdNotify("WATCHDOG=1")
			}
		}
	}
}
