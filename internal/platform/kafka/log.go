package kafka

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger forwards kgo's warnings and errors (connection losses, group
// errors) to the watermill logger; kgo's info level is too chatty to keep.
type kgoLogger struct{ l watermill.LoggerAdapter }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := watermill.LogFields{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		fields[fmt.Sprint(keyvals[i])] = keyvals[i+1]
	}
	if level == kgo.LogLevelError {
		k.l.Error("kgo: "+msg, errors.New(msg), fields)
		return
	}
	k.l.Info("kgo: "+msg, fields)
}

// kfakeLogger does the same for the embedded broker.
type kfakeLogger struct{ l watermill.LoggerAdapter }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch level {
	case kfake.LogLevelError:
		k.l.Error("kfake: "+msg, errors.New(msg), nil)
	case kfake.LogLevelWarn:
		k.l.Info("kfake: "+msg, nil)
	}
}

func orNop(l watermill.LoggerAdapter) watermill.LoggerAdapter {
	if l == nil {
		return watermill.NopLogger{}
	}
	return l
}
