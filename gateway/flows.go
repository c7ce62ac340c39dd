package gateway

import (
	"context"
	"errors"
	"fmt"

	client "github.com/ory/kratos-client-go"
)

// flowUI fetches a Kratos login or registration flow (with the browser's
// cookies, which Kratos checks against the flow) and flattens its form.
func (s *Sessions) flowUI(ctx context.Context, kind, id, cookie string) (flowView, error) {
	var ui client.UiContainer
	switch kind {
	case "login":
		f, _, err := s.api.GetLoginFlow(ctx).Id(id).Cookie(cookie).Execute()
		if err != nil {
			return flowView{}, err
		}
		ui = f.Ui
	case "registration":
		f, _, err := s.api.GetRegistrationFlow(ctx).Id(id).Cookie(cookie).Execute()
		if err != nil {
			return flowView{}, err
		}
		ui = f.Ui
	default:
		return flowView{}, fmt.Errorf("unknown flow kind %q", kind)
	}
	v := flowView{Action: ui.Action, Method: ui.Method, Messages: texts(ui.Messages)}
	for _, n := range ui.Nodes {
		in := n.Attributes.UiNodeInputAttributes
		if in == nil {
			continue // only password forms are enabled: inputs are all there is
		}
		fn := flowNode{Type: in.Type, Name: in.Name, Required: in.Required != nil && *in.Required, Messages: texts(n.Messages)}
		if in.Value != nil {
			fn.Value = fmt.Sprint(in.Value)
		}
		if in.Autocomplete != nil {
			fn.Autocomplete = *in.Autocomplete
		}
		if n.Meta.Label != nil {
			fn.Label = n.Meta.Label.Text
		}
		v.Nodes = append(v.Nodes, fn)
	}
	return v, nil
}

func texts(ts []client.UiText) []flowMessage {
	var out []flowMessage
	for _, t := range ts {
		out = append(out, flowMessage{Type: t.Type, Text: t.Text})
	}
	return out
}

// flowError is the message of a Kratos self-service error.
func (s *Sessions) flowError(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("no error id")
	}
	fe, _, err := s.api.GetFlowError(ctx).Id(id).Execute()
	if err != nil {
		return "", err
	}
	if m, ok := fe.Error["message"].(string); ok {
		return m, nil
	}
	return fmt.Sprint(fe.Error), nil
}

// logoutURL is where the browser ends its session.
func (s *Sessions) logoutURL(ctx context.Context, cookie string) (string, error) {
	f, _, err := s.api.CreateBrowserLogoutFlow(ctx).Cookie(cookie).Execute()
	if err != nil {
		return "", err
	}
	return f.LogoutUrl, nil
}
