package main

import (
	"crypto/ed25519"
	"flag"
	"strings"

	"github.com/fanfare/fanfare/gateway"
	"golang.org/x/time/rate"
)

// gatewayOptions are the gateway's flags (fanfare dev and fanfare serve gateway).
type gatewayOptions struct {
	public   *string
	cors     *string
	maxBytes *int64
	rate     *float64
	burst    *int
}

func gatewayFlags(fs *flag.FlagSet) gatewayOptions {
	return gatewayOptions{
		public:   fs.String("public-url", "", "the URL browsers reach the gateway at (default: http://<--http address>)"),
		cors:     fs.String("cors-origins", "", "comma-separated origins whose web clients may call the API (\"*\": any); none by default"),
		maxBytes: fs.Int64("max-request-bytes", 4<<20, "largest request body the gateway accepts"),
		rate:     fs.Float64("rate-limit", 100, "calls per second allowed per identity"),
		burst:    fs.Int("rate-burst", 200, "calls an identity may make at once above the rate"),
	}
}

func (o gatewayOptions) publicURL(listenAddr string) string {
	if *o.public != "" {
		return strings.TrimSuffix(*o.public, "/")
	}
	return "http://" + listenAddr
}

func (o gatewayOptions) build(backends []gateway.Backend, kratosPublic string, key ed25519.PrivateKey, publicURL string) (*gateway.Gateway, error) {
	var origins []string
	if *o.cors != "" {
		origins = strings.Split(*o.cors, ",")
	}
	return gateway.New(gateway.Config{Backends: backends, Kratos: gateway.NewSessions(kratosPublic), SigningKey: key,
		MaxRequestBytes: *o.maxBytes, Rate: rate.Limit(*o.rate), Burst: *o.burst, CORSOrigins: origins, PublicURL: publicURL})
}
