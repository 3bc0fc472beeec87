package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

// fireActivity is the intake's JSON form of one call activity (SPEC §7).
type fireActivity struct {
	CallID          string `json:"callId"`
	Phase           string `json:"phase"`
	CallerExtension string `json:"callerExtension,omitempty"`
	CallerIDNum     string `json:"callerIdNum,omitempty"`
	CallerIDName    string `json:"callerIdName,omitempty"`
	CalledNumber    string `json:"calledNumber,omitempty"`
	CalledExtension string `json:"calledExtension,omitempty"`
	CalledDID       string `json:"calledDid,omitempty"`
	Status          string `json:"status,omitempty"`
	CallAPIID       string `json:"callApiId,omitempty"`
}

const fireUsage = `usage: callevents fire --call-id ID --phase dial|answer|hangup [--from EXT] [--to EXT] [flags]

Reports one piece of call activity to a running server's intake
(POST /pbx/v1/events), as a PBX would, and prints the server's answer:
{"queued":N,"accepted":A,"duplicates":D}, the deliveries queued, whether
the activity was new (accepted 1) or already reported (duplicates 1).
Authenticate with --token, or with --client-id and --client-secret of a
pbx or admin client.
`

// fireOptions are the flags of `callevents fire` besides the activity.
type fireOptions struct {
	server, token, clientID, clientSecret string
}

// newFireFlagSet declares the flags of `callevents fire` into a and o.
func newFireFlagSet(a *fireActivity, o *fireOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fire", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, fireUsage); cliflag.PrintDefaults(fs) }
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "base URL of the callevents server")
	fs.StringVar(&o.token, "token", "", "access token of a pbx or admin client")
	fs.StringVar(&o.clientID, "client-id", "", "client id, to get a token")
	fs.StringVar(&o.clientSecret, "client-secret", "", "client secret, to get a token")
	fs.StringVar(&a.CallID, "call-id", "", "call id, the same for the whole call (required)")
	fs.StringVar(&a.Phase, "phase", "", "dial, answer or hangup (required)")
	fs.StringVar(&a.CallerExtension, "from", "", "calling extension, e.g. 0003*210")
	fs.StringVar(&a.CalledExtension, "to", "", "called extension, e.g. 0003*211")
	fs.StringVar(&a.CallerIDNum, "caller-id-num", "", "caller ID number")
	fs.StringVar(&a.CallerIDName, "caller-id-name", "", "caller ID name")
	fs.StringVar(&a.CalledNumber, "called-number", "", "the number dialled")
	fs.StringVar(&a.CalledDID, "called-did", "", "public number of the called extension")
	fs.StringVar(&a.Status, "status", "", "hangup status: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL")
	fs.StringVar(&a.CallAPIID, "call-api-id", "", "id of a call started through the API")
	return fs
}

// runFire posts one activity to the intake endpoint of a running server.
func runFire(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var a fireActivity
	var o fireOptions
	if err := cliflag.Parse(newFireFlagSet(&a, &o, stderr), args); err != nil {
		return err
	}
	server, token, clientID, clientSecret := o.server, o.token, o.clientID, o.clientSecret
	server = strings.TrimRight(server, "/")
	client := &http.Client{Timeout: 30 * time.Second}
	if token == "" {
		if clientID == "" || clientSecret == "" {
			return errors.New("fire: give --token, or --client-id and --client-secret")
		}
		var err error
		if token, err = fetchToken(ctx, client, server, clientID, clientSecret); err != nil {
			return fmt.Errorf("fire: %w", err)
		}
	}
	body, _ := json.Marshal(a)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/pbx/v1/events", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("fire: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fire: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	stdout.Write(bytes.TrimSpace(out))
	fmt.Fprintln(stdout)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("fire: the server answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// fetchToken gets an access token with the client credentials grant.
func fetchToken(ctx context.Context, client *http.Client, server, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/oauth/token.php", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("no access token from %s (HTTP %d %s)", server, resp.StatusCode, tok.Error)
	}
	return tok.AccessToken, nil
}
