// Package h2c is how every Fanfare port and client speaks HTTP without
// TLS: HTTP/2 in cleartext (prior knowledge), which gRPC needs for its
// trailers and streams, beside HTTP/1.1 for browsers and curl.
package h2c

import "net/http"

// Server is the protocols of a Fanfare port: HTTP/1.1 and cleartext
// HTTP/2.
func Server() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// Transport speaks HTTP/2 to every URL: cleartext for http://, over TLS
// for https://. Many concurrent calls share a connection per host.
func Transport() *http.Transport {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: p, MaxIdleConnsPerHost: 64}
}
