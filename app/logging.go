package app

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// parseLevel maps log.level to a zap level: error, warn, info, debug, or a
// logr verbosity N (logr's V(N) is zap's level -N).
func parseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return zapcore.ErrorLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 10 {
		return 0, fmt.Errorf("%q: must be error, warn, info, debug or a verbosity 0..10", s)
	}
	return zapcore.Level(-n), nil
}

// NewLogger returns a logr.Logger over zap writing to w in cfg's format,
// and a flush function to call before the process exits.
func NewLogger(cfg LogConfig, w io.Writer) (logr.Logger, func(), error) {
	level, err := parseLevel(cfg.Level)
	if err != nil {
		return logr.Discard(), func() {}, fmt.Errorf("%w: log.level: %w", ErrInvalidConfig, err)
	}
	var enc zapcore.Encoder
	switch cfg.Format {
	case LogJSON:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case LogConsole, "":
		ec := zap.NewDevelopmentEncoderConfig()
		// One layout for the line's time and for time fields (a lease's
		// expiry): RFC 3339 with milliseconds, never a bare time of day.
		ec.EncodeTime = zapcore.TimeEncoderOfLayout(stampLayout)
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return logr.Discard(), func() {}, fmt.Errorf("%w: log.format %q: must be %q or %q", ErrInvalidConfig, cfg.Format, LogConsole, LogJSON)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), zap.NewAtomicLevelAt(level))
	zl := zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w))))
	return zapr.NewLogger(zl), func() { _ = zl.Sync() }, nil
}
