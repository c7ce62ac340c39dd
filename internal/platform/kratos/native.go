package kratos

import (
	"bytes"
	"connectrpc.com/connect"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// nativeClient runs the native (API) self-service flows. A timeout keeps a
// wedged Kratos from hanging a caller whose context has no deadline.
var nativeClient = &http.Client{Timeout: 30 * time.Second}

// RegisterNative registers an identity with the password method through the
// native (API) registration flow of the Kratos public API at publicURL and
// returns its session token (the flow logs the new identity in) and
// identity id. Kratos' refusal (an email already taken, a weak password, …)
// comes back as an error carrying Kratos' messages.
func RegisterNative(ctx context.Context, publicURL, email, displayName, password string) (sessionToken, identityID string, err error) {
	action, err := nativeFlow(ctx, publicURL, "registration")
	if err != nil {
		return "", "", err
	}
	var done struct {
		SessionToken string `json:"session_token"`
		Identity     struct {
			ID string `json:"id"`
		} `json:"identity"`
	}
	if err := submitFlow(ctx, "registration", action, map[string]any{
		"method":   "password",
		"password": password,
		"traits":   map[string]any{"email": email, "display_name": displayName},
	}, &done); err != nil {
		return "", "", err
	}
	if done.SessionToken == "" || done.Identity.ID == "" {
		return "", "", errors.New("kratos: registration returned no session token or identity (is the session hook after password registration configured?)")
	}
	return done.SessionToken, done.Identity.ID, nil
}

// LoginNative logs in with email and password through the native (API)
// login flow of the Kratos public API at publicURL and returns the session
// token (for the X-Session-Token header). Wrong credentials come back as
// an error carrying Kratos' message.
func LoginNative(ctx context.Context, publicURL, email, password string) (sessionToken string, err error) {
	action, err := nativeFlow(ctx, publicURL, "login")
	if err != nil {
		return "", err
	}
	var done struct {
		SessionToken string `json:"session_token"`
	}
	if err := submitFlow(ctx, "login", action, map[string]any{
		"method":     "password",
		"identifier": email,
		"password":   password,
	}, &done); err != nil {
		return "", err
	}
	if done.SessionToken == "" {
		return "", errors.New("kratos: login returned no session token")
	}
	return done.SessionToken, nil
}

// nativeFlow creates a native flow of kind (registration, login) and
// returns the URL to submit it to.
func nativeFlow(ctx context.Context, publicURL, kind string) (action string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(publicURL, "/")+"/self-service/"+kind+"/api", nil)
	if err != nil {
		return "", fmt.Errorf("kratos: %s flow: %w", kind, err)
	}
	req.Header.Set("Accept", "application/json")
	var flow struct {
		ID string `json:"id"`
		UI struct {
			Action string `json:"action"`
		} `json:"ui"`
	}
	if err := doFlowJSON(req, kind, &flow); err != nil {
		return "", err
	}
	if flow.ID == "" || flow.UI.Action == "" {
		return "", fmt.Errorf("kratos: %s flow without id or action", kind)
	}
	return flow.UI.Action, nil
}

func submitFlow(ctx context.Context, kind, action string, body map[string]any, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("kratos: %s: %w", kind, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return doFlowJSON(req, kind, into)
}

// doFlowJSON sends req and decodes a 200 answer into into; any other
// status is an error with the messages Kratos put in the flow or error.
func doFlowJSON(req *http.Request, kind string, into any) error {
	resp, err := nativeClient.Do(req)
	if err != nil {
		return fmt.Errorf("kratos: %s: %w", kind, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("kratos: %s: read answer: %w", kind, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kratos: %s refused (%s): %s", kind, resp.Status, flowMessages(raw))
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("kratos: %s: decode answer: %w", kind, err)
	}
	return nil
}

// flowMessages extracts the human-readable messages of a refused flow
// (ui.messages and the nodes' messages) or of a Kratos error answer, or
// returns the raw body when it has none.
func flowMessages(raw []byte) string {
	type message struct {
		Text string `json:"text"`
	}
	var body struct {
		UI struct {
			Messages []message `json:"messages"`
			Nodes    []struct {
				Attributes struct {
					Name string `json:"name"`
				} `json:"attributes"`
				Messages []message `json:"messages"`
			} `json:"nodes"`
		} `json:"ui"`
		Error struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		} `json:"error"`
	}
	var msgs []string
	if json.Unmarshal(raw, &body) == nil {
		for _, m := range body.UI.Messages {
			msgs = append(msgs, m.Text)
		}
		for _, n := range body.UI.Nodes {
			for _, m := range n.Messages {
				if n.Attributes.Name != "" {
					msgs = append(msgs, n.Attributes.Name+": "+m.Text)
				} else {
					msgs = append(msgs, m.Text)
				}
			}
		}
		if len(msgs) == 0 && body.Error.Message != "" {
			msgs = append(msgs, strings.TrimSpace(body.Error.Message+" "+body.Error.Reason))
		}
	}
	if len(msgs) == 0 {
		s := strings.TrimSpace(string(raw))
		if len(s) > 512 {
			s = s[:512] + "…"
		}
		return s
	}
	return strings.Join(msgs, "; ")
}

// SessionHeader carries a Kratos session token on API calls (native apps,
// tests, tools); browsers send the session cookie instead.
const SessionHeader = "X-Session-Token"

// WithSession is a Connect client interceptor that sends a session token
// on every call, unary or streaming: how a native client calls the
// gateway.
func WithSession(token string) connect.Interceptor { return sessionToken(token) }

type sessionToken string

func (s sessionToken) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set(SessionHeader, string(s))
		return next(ctx, req)
	}
}

func (s sessionToken) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set(SessionHeader, string(s))
		return conn
	}
}

func (sessionToken) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
