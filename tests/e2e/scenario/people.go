package scenario

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/kratos"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"

	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
)

// person is a Kratos identity with a native session and a client of every
// service through the gateway (gRPC, the session in X-Session-Token).
type person struct {
	Name, Email, ID, Token string
	Roles                  []string

	accounts accountsv1connect.AccountsServiceClient
	songs    songsv1connect.SongsServiceClient
	chains   chainsv1connect.ChainsServiceClient
	plays    playsv1connect.PlaysServiceClient
	tipping  tippingv1connect.TippingServiceClient
	escrow   escrowv1connect.EscrowServiceClient
	reports  reportsv1connect.ReportsServiceClient
}

// password of every scenario identity (Kratos wants 8+ characters not in
// its list of common ones).
const password = "fanfare-e2e-scenario-password-9"

// email is a person's address in this run: unique per run, so several
// runs can share one Kratos.
func (d *driver) email(name string) string {
	return fmt.Sprintf("%s.%s@e2e.fanfare.test", name, d.tag)
}

// register signs a person up with Kratos' native registration flow,
// grants its roles through the admin API and opens its accounts through
// the gateway (its first call). Roles are granted before the first call
// so that the gateway, which remembers a session for a few seconds, sees
// them. A registration whose answer was lost is found again by logging in.
func (d *driver) register(ctx context.Context, pp personPlan) (*person, error) {
	p := &person{Name: pp.Name, Email: d.email(pp.Name), Roles: pp.Roles}
	display := strings.ToUpper(pp.Name[:1]) + pp.Name[1:] + " " + d.tag
	err := d.retry(ctx, "register "+pp.Name, func(ctx context.Context) error {
		token, id, err := kratos.RegisterNative(ctx, d.env.KratosPublicURL, p.Email, display, password)
		if err == nil {
			p.Token, p.ID = token, id
			return nil
		}
		if transient(err, callOptions{}) {
			return err
		}
		// Registered before (an answer lost to a restart)? Then logging
		// in works and the admin API knows the id.
		token, lerr := kratos.LoginNative(ctx, d.env.KratosPublicURL, p.Email, password)
		if lerr != nil {
			return fmt.Errorf("%w (and logging in: %v)", err, lerr)
		}
		id, _, lerr = kratos.NewAdmin(d.env.KratosAdminURL).IdentityByEmail(ctx, p.Email)
		if lerr != nil {
			return lerr
		}
		p.Token, p.ID = token, id
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, role := range pp.Roles {
		err := d.retry(ctx, "grant "+role+" to "+pp.Name, func(ctx context.Context) error {
			_, err := kratos.NewAdmin(d.env.KratosAdminURL).Grant(ctx, p.Email, role)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	d.clients(p)
	if _, err := call(ctx, d, "open accounts of "+pp.Name, p.accounts.OpenAccount, &accountsv1.OpenAccountRequest{}); err != nil {
		return nil, err
	}
	return p, nil
}

// clients makes p's service clients.
func (d *driver) clients(p *person) {
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithInterceptors(kratos.WithSession(p.Token))}
	u := d.env.GatewayURL
	c := d.http
	p.accounts = accountsv1connect.NewAccountsServiceClient(c, u, opts...)
	p.songs = songsv1connect.NewSongsServiceClient(c, u, opts...)
	p.chains = chainsv1connect.NewChainsServiceClient(c, u, opts...)
	p.plays = playsv1connect.NewPlaysServiceClient(c, u, opts...)
	p.tipping = tippingv1connect.NewTippingServiceClient(c, u, opts...)
	p.escrow = escrowv1connect.NewEscrowServiceClient(c, u, opts...)
	p.reports = reportsv1connect.NewReportsServiceClient(c, u, opts...)
}

// newHTTPClient speaks HTTP/2 without TLS (h2c, prior knowledge) to the
// gateway, as gRPC wants.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: h2c.Transport()}
}

// who returns a person by name.
func (d *driver) who(name string) *person {
	p, ok := d.people[name]
	if !ok {
		panic("scenario: no person " + name)
	}
	return p
}
