package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// inProcess is a transport to a handler in this process: HTTP over
// in-memory pipes, so the gateway's own calls (pages, streams included)
// take the same path as calls over the network, without a socket.
func inProcess(h http.Handler) http.RoundTripper {
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	go (&http.Server{Handler: h}).Serve(l) //nolint:errcheck // serves until the process ends
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			select {
			case l.conns <- server:
				return client, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-l.done:
				return nil, errors.New("in-process listener closed")
			}
		},
		MaxIdleConnsPerHost: 64,
	}
}

type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "in-process" }
