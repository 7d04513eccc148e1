package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/metrics"
)

// DefaultListen is the address serve listens on. It is loopback only, so
// that the metrics are not exposed beyond the host unless requested.
const DefaultListen = "127.0.0.1:9464"

// healthTimeout bounds the DLQ read of one /healthz request.
const healthTimeout = 2 * time.Second

func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		opts       brokerOptions
		listen     string
		runMonitor bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Prometheus metrics of the DLQ on /metrics and a health check on /healthz",
		Long: "serve exposes the DLQ's length, its dropped count and the newest entries by handler and\n" +
			"event type on /metrics, read at each scrape, and answers /healthz with 200 while the broker\n" +
			"answers and 503 otherwise. It listens on " + DefaultListen + " unless --listen says otherwise;\n" +
			"the endpoints have no authentication, and serve warns when it listens beyond loopback.\n" +
			"With --monitor it also runs the monitor, with the monitor command's flags.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.load()
			if err != nil {
				return err
			}
			logger := newLogger(stderr, cfg.LogLevel)
			b, err := openBroker(cmd.Context(), cfg, logger, stderr, true)
			if err != nil {
				return err
			}
			defer b.Close()
			return runServe(cmd.Context(), b, serveConfig{
				listen: listen, monitor: runMonitor, config: cfg, logger: logger, stdout: stdout,
			})
		},
	}
	opts.addFlags(cmd.Flags())
	opts.addMonitorFlags(cmd.Flags())
	opts.addLogLevelFlag(cmd.Flags())
	cmd.Flags().StringVar(&listen, "listen", DefaultListen, "address to listen on, host:port")
	cmd.Flags().BoolVar(&runMonitor, "monitor", false, "also run the monitor and send its alerts")
	return cmd
}

type serveConfig struct {
	listen  string
	monitor bool
	config  config.Config
	logger  *slog.Logger
	stdout  io.Writer

	// ready, when set, receives the address listened on.
	ready chan<- string
}

func runServe(ctx context.Context, b *broker, cfg serveConfig) error {
	handler := serveMux(b.dlq(), cfg.config.Monitor.Window, cfg.logger)
	listener, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	monitorDone := make(chan error, 1)
	if cfg.monitor {
		m, err := buildMonitor(cfg.config, b, cfg.logger, nil)
		if err != nil {
			listener.Close()
			return err
		}
		go func() { monitorDone <- m.Run(ctx) }()
	} else {
		monitorDone <- nil
	}

	go func() {
		<-ctx.Done()
		shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = server.Shutdown(shutdownCtx)
	}()

	addr := listener.Addr().String()
	warnIfReachable(cfg.logger, listener.Addr())
	cfg.logger.Info("serving metrics", slog.String("metrics", "http://"+addr+"/metrics"),
		slog.String("health", "http://"+addr+"/healthz"), slog.String(core.LogStream, b.source))
	if cfg.ready != nil {
		cfg.ready <- addr
	}

	err = server.Serve(listener)
	cancel()
	<-monitorDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve metrics on %s: %w", addr, err)
}

// warnIfReachable logs a warning when a listener on addr accepts
// connections from other hosts, since the endpoints have no
// authentication.
func warnIfReachable(logger *slog.Logger, addr net.Addr) {
	if reachableBeyondHost(addr) {
		logger.Warn("serving beyond loopback; /metrics and /healthz have no authentication, "+
			"so limit who can reach them with a firewall or a proxy", slog.String("listen", addr.String()))
	}
}

// reachableBeyondHost reports whether a listener on addr accepts
// connections from other hosts: it does unless addr is a loopback address.
func reachableBeyondHost(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}

// serveMux returns the handler of /metrics and /healthz for a DLQ.
func serveMux(dlq core.DLQ, window int, logger *slog.Logger) http.Handler {
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewDLQCollector(metrics.DLQCollectorConfig{DLQ: dlq, Window: window, Logger: logger}),
	)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if _, err := dlq.Len(ctx); err != nil {
			logger.LogAttrs(ctx, slog.LevelError, "health check failed", slog.String(core.LogError, err.Error()))
			http.Error(w, "dlq unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}
