package service

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

// The admin console (SPEC.md §10): server-rendered pages under
// PathConsole, every asset embedded, every flow a plain HTML form (no
// JavaScript). It decodes forms and calls the same domain services as the
// APIs, with the signed-in client's Principal: scope, validation and codes
// are theirs. Its one error writer is writeConsoleError.

// PathConsole is the console's root.
const PathConsole = "/console/"

// consoleCookie holds the session id (HttpOnly, SameSite=Strict).
const consoleCookie = "callevents_console"

// consolePageSize is the Deliveries page's rows per page.
const consolePageSize = 50

//go:embed console
var consoleFiles embed.FS

var consoleTemplates = template.Must(template.New("console").Funcs(template.FuncMap{
	"eventTypes": func() []callevents.EventType {
		return []callevents.EventType{callevents.DialIn, callevents.DialOut, callevents.Hangup, callevents.AnswerIn, callevents.AnswerOut}
	},
	"methodName": methodName,
	"timeOf": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
	"unix": func(t time.Time) int64 { return t.Unix() },
}).ParseFS(consoleFiles, "console/*.html"))

func methodName(m callevents.Method) string {
	if m == callevents.MethodPOST {
		return "POST"
	}
	return "GET"
}

// consolePage is what every page template gets.
type consolePage struct {
	Title     string
	Principal callevents.Principal
	SignedIn  bool
	CSRF      string
	Notice    string
	Error     string // the page's own error, in the words of the code's message
	Data      any
}

// ConsoleConfig turns the console on.
type ConsoleConfig struct {
	Sessions *callevents.ConsoleSessions
	// Queue gives the Overview its queue depth; nil leaves it out.
	Queue callevents.QueueStatsReader
	// Outcomes gives the Overview its last hour; nil leaves it out.
	Outcomes callevents.DeliveryOutcomeReader
	// Breakers gives the Overview the circuit breakers this process's
	// dispatcher has open; nil leaves them out.
	Breakers interface {
		OpenBreakers() []callevents.OpenBreaker
	}
}

func (s *Server) registerConsole(mux *http.ServeMux) {
	if s.console.Sessions == nil {
		return
	}
	page := func(name string, h handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, endpoint{edge: "console", operation: name, fallback: callevents.CodeRetrieveFailed, writeError: writeConsoleError}, h)
		})
	}
	mux.Handle("GET "+PathConsole+"{$}", page("home", s.consoleHome))
	mux.Handle("GET "+PathConsole+"sign-in", page("sign-in", s.consoleSignInForm))
	mux.Handle("POST "+PathConsole+"sign-in", page("sign-in", s.consoleSignIn))
	mux.Handle("POST "+PathConsole+"sign-out", page("sign-out", s.signedIn(s.consoleSignOut)))
	mux.Handle("GET "+PathConsole+"overview", page("overview", s.signedIn(s.consoleOverview)))
	mux.Handle("GET "+PathConsole+"call-events", page("call-events", s.signedIn(s.consoleCallEvents)))
	mux.Handle("POST "+PathConsole+"call-events", page("call-events", s.signedIn(s.consoleCallEventAction)))
	mux.Handle("GET "+PathConsole+"call-events/edit", page("call-events", s.signedIn(s.consoleEditForm)))
	mux.Handle("GET "+PathConsole+"deliveries", page("deliveries", s.signedIn(s.consoleDeliveries)))
	mux.Handle("GET "+PathConsole+"delivery", page("deliveries", s.signedIn(s.consoleDelivery)))
	mux.Handle("POST "+PathConsole+"delivery", page("deliveries", s.signedIn(s.consoleResend)))
	mux.Handle("GET "+PathConsole+"console.css", http.HandlerFunc(serveConsoleCSS))
}

func serveConsoleCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	http.ServeFileFS(w, r, consoleFiles, "console/console.css")
}

// consoleRequest is a signed-in request: its session id and principal.
type consoleRequest struct {
	id string
	p  callevents.Principal
}

type consoleKey struct{}

// signedIn runs h for a request with a live session, and checks the CSRF
// token of every POST before h can change anything (403 without it).
// Without a session it sends the browser to the sign-in page.
func (s *Server) signedIn(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := r.Cookie(consoleCookie)
		if err != nil {
			http.Redirect(w, r, PathConsole+"sign-in", http.StatusSeeOther)
			return nil
		}
		p, err := s.console.Sessions.Resume(r.Context(), c.Value)
		if code := callevents.ErrorCode(err, 0); code == callevents.CodeAuthInvalid || code == callevents.CodeTokenExpired {
			clearConsoleCookie(w, r)
			http.Redirect(w, r, PathConsole+"sign-in?notice="+url.QueryEscape(callevents.ErrorMessage(err)), http.StatusSeeOther)
			return nil
		}
		if err != nil {
			return err
		}
		if r.Method == http.MethodPost {
			if err := callevents.CheckConsoleCSRF(c.Value, r.PostFormValue("csrf")); err != nil {
				return &httpError{status: http.StatusForbidden, name: "forbidden", err: &callevents.Error{Code: callevents.CodeAccessDenied,
					Message: "The form is missing its security token (CSRF): reload the page and try again.", Err: err}}
			}
		}
		cr := consoleRequest{id: c.Value, p: p}
		return h(w, r.WithContext(context.WithValue(r.Context(), consoleKey{}, cr)))
	}
}

func consoleOf(r *http.Request) consoleRequest {
	cr, _ := r.Context().Value(consoleKey{}).(consoleRequest)
	return cr
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, pg consolePage) error {
	cr := consoleOf(r)
	if cr.id != "" {
		pg.SignedIn, pg.Principal, pg.CSRF = true, cr.p, callevents.ConsoleCSRFToken(cr.id)
	}
	var b strings.Builder
	if err := consoleTemplates.ExecuteTemplate(&b, name, pg); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, err := w.Write([]byte(b.String()))
	return err
}

// writeConsoleError is the console's one error writer: a page with the
// message of the error's code (an internal one only quotes the request
// id), and the status the APIs would answer.
func writeConsoleError(s *Server, w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(r, err)
	status := http.StatusBadRequest
	message := callevents.ErrorMessage(err)
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, message = he.status, he.err.Message
		setRetryAfter(w, err)
	case code == callevents.CodeRetrieveFailed || code == callevents.CodeUpdateFailed:
		s.logFailure(r, code, err)
		status, message = http.StatusInternalServerError, "Internal error. Quote request id "+requestID(r.Context())+"."
		if errors.Is(err, callevents.ErrUnavailable) {
			status, message = http.StatusServiceUnavailable, callevents.ErrorMessage(err)
		}
	case code == callevents.CodeAccessDenied:
		status = http.StatusForbidden
	case code == callevents.CodeCallEventNotFound || code == callevents.CodeDeliveryNotFound:
		status = http.StatusNotFound
	}
	s.served(r, code)
	s.render(w, r, status, "error", consolePage{Title: "Error", Error: message})
}

func clearConsoleCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: consoleCookie, Value: "", Path: PathConsole, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *Server) consoleHome(w http.ResponseWriter, r *http.Request) error {
	if _, err := r.Cookie(consoleCookie); err != nil {
		http.Redirect(w, r, PathConsole+"sign-in", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, PathConsole+"call-events", http.StatusSeeOther)
	return nil
}

type signInData struct{ ClientID string }

func (s *Server) consoleSignInForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "sign-in", consolePage{Title: "Sign in", Notice: r.URL.Query().Get("notice")})
}

// consoleSignIn checks the client id and secret under the APIs' rate
// limits, and sets the session cookie.
func (s *Server) consoleSignIn(w http.ResponseWriter, r *http.Request) error {
	id, secret := strings.TrimSpace(r.PostFormValue("client_id")), r.PostFormValue("client_secret")
	if err := s.guards.checkAuthAllowed(r, id); err != nil {
		return err
	}
	session, _, err := s.console.Sessions.SignIn(r.Context(), id, secret)
	s.guards.noteAuthResult(r, id, err)
	if code := callevents.ErrorCode(err, 0); code == callevents.CodeAuthInvalid || code == callevents.CodeAccessDenied {
		msg := callevents.ErrorMessage(err)
		if code == callevents.CodeAuthInvalid {
			msg = "Wrong client ID or secret."
		}
		return s.render(w, r, http.StatusUnauthorized, "sign-in", consolePage{Title: "Sign in", Error: msg, Data: signInData{ClientID: id}})
	}
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: consoleCookie, Value: session, Path: PathConsole, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, PathConsole+"call-events", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleSignOut(w http.ResponseWriter, r *http.Request) error {
	if err := s.console.Sessions.SignOut(r.Context(), consoleOf(r).id); err != nil {
		return err
	}
	clearConsoleCookie(w, r)
	http.Redirect(w, r, PathConsole+"sign-in?notice="+url.QueryEscape("You are signed out."), http.StatusSeeOther)
	return nil
}

type overviewData struct {
	Queue                *callevents.QueueStats
	OldestDue            string
	Hour                 bool // the last hour's figures are there
	Delivered, Failed    int
	Chart                []chartBar
	Breakers             []callevents.OpenBreaker
	ShowBreakers         bool
	ChartWidth, ChartMax int
}

// chartBar is one minute of the Overview's chart, drawn on the server as
// inline SVG: the delivered part from the baseline up, the failed part on
// top of it.
type chartBar struct {
	X, DeliveredY, DeliveredH, FailedY, FailedH int
	Label                                       string
}

const (
	chartMinutes = 60
	chartBarStep = 12 // px per minute (10 bar, 2 gap)
	chartHeight  = 120
)

func (s *Server) consoleOverview(w http.ResponseWriter, r *http.Request) error {
	var d overviewData
	// The queue is every organization's: only an admin client sees it.
	if consoleOf(r).p.Scope != callevents.ScopeAdmin {
		return s.render(w, r, http.StatusOK, "overview", consolePage{Title: "Overview", Data: d})
	}
	now := time.Now().UTC()
	if s.console.Queue != nil {
		q, err := s.console.Queue.QueueStats(r.Context(), now)
		if err != nil {
			return err
		}
		d.Queue, d.OldestDue = &q, q.OldestDue.Round(time.Second).String()
	}
	if s.console.Breakers != nil {
		d.ShowBreakers, d.Breakers = true, s.console.Breakers.OpenBreakers()
	}
	if s.console.Outcomes != nil {
		first := now.Truncate(time.Minute).Add(-(chartMinutes - 1) * time.Minute)
		counts, err := s.console.Outcomes.DeliveryOutcomes(r.Context(), first)
		if err != nil {
			return err
		}
		d.Hour, d.ChartWidth = true, chartMinutes*chartBarStep
		byMinute := map[time.Time]callevents.OutcomeCount{}
		for _, c := range counts {
			byMinute[c.Minute] = c
			d.Delivered += c.Delivered
			d.Failed += c.Failed
			d.ChartMax = max(d.ChartMax, c.Delivered+c.Failed)
		}
		for i := range chartMinutes {
			m := first.Add(time.Duration(i) * time.Minute)
			c := byMinute[m]
			bar := chartBar{X: i * chartBarStep, Label: fmt.Sprintf("%s: %d delivered, %d failed", m.Format("15:04"), c.Delivered, c.Failed)}
			if d.ChartMax > 0 {
				bar.DeliveredH = c.Delivered * chartHeight / d.ChartMax
				bar.FailedH = c.Failed * chartHeight / d.ChartMax
			}
			bar.DeliveredY = chartHeight - bar.DeliveredH
			bar.FailedY = bar.DeliveredY - bar.FailedH
			d.Chart = append(d.Chart, bar)
		}
	}
	return s.render(w, r, http.StatusOK, "overview", consolePage{Title: "Overview", Data: d})
}

// callEventsData is the Call Events page: an extension's Call Events, the
// add form (with what was typed and the errors by field), a test result.
type callEventsData struct {
	Extension  string
	Opened     bool
	CallEvents []callevents.CallEvent
	Form       callEventForm
	FieldError map[string]string
	Edit       bool
	Test       *testResultData
}

type callEventForm struct {
	ID, Type, Method, URL, Note string
	Status                      callevents.Status
}

type testResultData struct {
	ID     string
	Result callevents.TestResult
}

func (s *Server) consoleCallEvents(w http.ResponseWriter, r *http.Request) error {
	return s.showCallEvents(w, r, strings.TrimSpace(r.URL.Query().Get("extension")), http.StatusOK, consolePage{Notice: r.URL.Query().Get("notice")}, callEventsData{})
}

// showCallEvents renders ext's Call Events (or only the Extension field
// when ext is empty) with pg's notice or error and d's form.
func (s *Server) showCallEvents(w http.ResponseWriter, r *http.Request, ext string, status int, pg consolePage, d callEventsData) error {
	d.Extension = ext
	if d.Form.Type == "" {
		d.Form.Type, d.Form.Method = "0", "0"
	}
	if ext != "" {
		e, err := callevents.ParseExtension(ext)
		if err == nil {
			d.CallEvents, _, err = s.callEvents.FindCallEvents(r.Context(), consoleOf(r).p, callevents.CallEventFilter{Extension: e, Limit: callevents.MaxPageCount})
		}
		if err != nil {
			if err := showError(err, &pg, &status); err != nil {
				return err
			}
		} else {
			d.Opened = true
		}
	}
	pg.Title, pg.Data = "Call Events", d
	return s.render(w, r, status, "call-events", pg)
}

// showError puts an error the user can act on into pg, with its status,
// and returns nil; an internal one it returns, for writeConsoleError.
func showError(err error, pg *consolePage, status *int) error {
	if !isClientError(err) {
		return err
	}
	pg.Error, *status = callevents.ErrorMessage(err), consoleStatus(err)
	return nil
}

// isClientError: an error the user can act on, shown on the page.
func isClientError(err error) bool {
	code := callevents.ErrorCode(err, 0)
	return code != 0 && code != callevents.CodeRetrieveFailed && code != callevents.CodeUpdateFailed
}

func consoleStatus(err error) int {
	switch callevents.ErrorCode(err, 0) {
	case callevents.CodeAccessDenied:
		return http.StatusForbidden
	case callevents.CodeCallEventNotFound, callevents.CodeDeliveryNotFound:
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// formFieldOf names the form field an error code concerns.
func formFieldOf(err error) string {
	switch callevents.ErrorCode(err, 0) {
	case callevents.CodeTypeInvalid:
		return "type"
	case callevents.CodeMethodInvalid:
		return "method"
	case callevents.CodeURLInvalid, callevents.CodeTargetNotAllowed, callevents.CodeMissingParameter:
		return "url"
	case callevents.CodeNoteInvalid:
		return "note"
	case callevents.CodeSecretInvalid:
		return "secret"
	case callevents.CodeExtensionInvalid:
		return "extension"
	}
	return ""
}

func (s *Server) consoleEditForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ext, id := strings.TrimSpace(q.Get("extension")), q.Get("id")
	e, err := callevents.ParseExtension(ext)
	if err != nil {
		return err
	}
	ces, _, err := s.callEvents.FindCallEvents(r.Context(), consoleOf(r).p, callevents.CallEventFilter{Extension: e, ID: &id, Limit: 1})
	if err != nil {
		return err
	}
	c := ces[0]
	d := callEventsData{Edit: true, Form: callEventForm{ID: c.ID, Type: strconv.Itoa(int(c.Type)), Method: strconv.Itoa(int(c.Method)), URL: c.URL, Note: c.Note, Status: c.Status}}
	return s.showCallEvents(w, r, ext, http.StatusOK, consolePage{}, d)
}

// consoleCallEventAction does what the form's action names: add, edit,
// enable, disable, delete or test.
func (s *Server) consoleCallEventAction(w http.ResponseWriter, r *http.Request) error {
	setOperation(r, "call-events", callevents.CodeUpdateFailed)
	p := consoleOf(r).p
	ext := strings.TrimSpace(r.PostFormValue("extension"))
	e, err := callevents.ParseExtension(ext)
	if err != nil {
		return s.showCallEvents(w, r, "", http.StatusBadRequest, consolePage{Error: callevents.ErrorMessage(err)}, callEventsData{})
	}
	form := callEventForm{ID: r.PostFormValue("id"), Type: r.PostFormValue("type"), Method: r.PostFormValue("method"), URL: r.PostFormValue("url"), Note: r.PostFormValue("note")}
	typ, typErr := parseFormInt(form.Type, callevents.CodeTypeInvalid, "Invalid event type.")
	ctx := r.Context()
	var notice string
	var test *testResultData
	switch action := r.PostFormValue("action"); action {
	case "add", "edit":
		method, methodErr := parseFormInt(form.Method, callevents.CodeMethodInvalid, "Invalid method.")
		upd := callevents.CallEventUpdate{URL: &form.URL, Note: &form.Note}
		m := callevents.Method(method)
		upd.Method = &m
		if secret := r.PostFormValue("secret"); secret != "" || action == "add" {
			upd.Secret = &secret
		}
		err = errors.Join(typErr, methodErr)
		if err == nil && action == "add" {
			_, err = s.callEvents.AddCallEvent(ctx, p, e, callevents.EventType(typ), upd)
			notice = "Call Event added."
		} else if err == nil {
			_, err = s.callEvents.EditCallEvent(ctx, p, e, callevents.EventType(typ), form.ID, upd)
			notice = "Call Event saved."
		}
		if err != nil {
			if !isClientError(err) {
				return err
			}
			d := callEventsData{Form: form, Edit: action == "edit", FieldError: map[string]string{}}
			if f := formFieldOf(err); f != "" {
				d.FieldError[f] = callevents.ErrorMessage(err)
			}
			return s.showCallEvents(w, r, ext, consoleStatus(err), consolePage{Error: "The Call Event was not saved: " + callevents.ErrorMessage(err)}, d)
		}
	case "enable", "disable":
		status := callevents.StatusEnabled
		if action == "disable" {
			status = callevents.StatusDisabled
		}
		if err = typErr; err == nil {
			_, err = s.callEvents.SetCallEventStatus(ctx, p, e, callevents.EventType(typ), form.ID, status)
		}
		notice = "Call Event " + action + "d."
	case "delete":
		id := form.ID
		_, err = s.callEvents.DeleteCallEvents(ctx, p, callevents.CallEventFilter{Extension: e, ID: &id})
		notice = "Call Event deleted."
	case "test":
		if s.deliveries == nil {
			err = notConfigured("Testing a Call Event")
			break
		}
		if err = typErr; err == nil {
			var res callevents.TestResult
			res, err = s.deliveries.TestCallEvent(ctx, p, e, callevents.EventType(typ), form.ID)
			test = &testResultData{ID: form.ID, Result: res}
		}
	default:
		return callevents.Errorf(callevents.CodeMalformedRequest, "Unknown action %q.", action)
	}
	if err != nil {
		if !isClientError(err) {
			return err
		}
		return s.showCallEvents(w, r, ext, consoleStatus(err), consolePage{Error: callevents.ErrorMessage(err)}, callEventsData{})
	}
	if test != nil {
		return s.showCallEvents(w, r, ext, http.StatusOK, consolePage{}, callEventsData{Test: test})
	}
	// Post/redirect/get: a reload does not repeat the change.
	http.Redirect(w, r, PathConsole+"call-events?extension="+url.QueryEscape(ext)+"&notice="+url.QueryEscape(notice), http.StatusSeeOther)
	return nil
}

func parseFormInt(s string, code callevents.Code, message string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, callevents.Errorf(code, "%s", message)
	}
	return n, nil
}

type deliveriesData struct {
	Extension, CallID, State string
	States                   []callevents.DeliveryState
	Opened                   bool
	Deliveries               []callevents.Delivery
	Total, Page, Pages       int
	PrevURL, NextURL         string
}

func (s *Server) consoleDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := deliveriesData{Extension: strings.TrimSpace(q.Get("extension")), CallID: strings.TrimSpace(q.Get("call_id")), State: q.Get("state"),
		States: []callevents.DeliveryState{callevents.DeliveryPending, callevents.DeliveryRunning, callevents.DeliveryDelivered, callevents.DeliveryFailed, callevents.DeliveryCancelled}}
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = max(d.Page, 1)
	pg := consolePage{Title: "Deliveries"}
	status := http.StatusOK
	if d.Extension != "" {
		e, err := callevents.ParseExtension(d.Extension)
		f := callevents.DeliveryFilter{Extension: e, CallID: d.CallID, State: callevents.DeliveryState(d.State), Offset: (d.Page - 1) * consolePageSize, Limit: consolePageSize}
		if err == nil && s.deliveries == nil {
			err = notConfigured("The delivery log")
		}
		if err == nil {
			d.Deliveries, d.Total, err = s.deliveries.FindDeliveries(r.Context(), consoleOf(r).p, f)
		}
		if err != nil {
			if err := showError(err, &pg, &status); err != nil {
				return err
			}
		} else {
			d.Opened = true
			d.Pages = max(1, (d.Total+consolePageSize-1)/consolePageSize)
			link := func(page int) string {
				v := url.Values{"extension": {d.Extension}, "call_id": {d.CallID}, "state": {d.State}, "page": {strconv.Itoa(page)}}
				return PathConsole + "deliveries?" + v.Encode()
			}
			if d.Page > 1 {
				d.PrevURL = link(d.Page - 1)
			}
			if d.Page < d.Pages {
				d.NextURL = link(d.Page + 1)
			}
		}
	}
	pg.Data = d
	return s.render(w, r, status, "deliveries", pg)
}

type deliveryData struct {
	D      callevents.Delivery
	Params url.Values
	// Signed: the Call Event has a secret, and Signatures[i] is the
	// webhook-signature of attempt i (with the secret it has now).
	Signed     bool
	Signatures []string
	// Gone: the Call Event was deleted, its secret with it.
	Gone bool
}

func (s *Server) findDelivery(r *http.Request, ext, id string) (callevents.Delivery, error) {
	if s.deliveries == nil {
		return callevents.Delivery{}, notConfigured("The delivery log")
	}
	e, err := callevents.ParseExtension(ext)
	if err != nil {
		return callevents.Delivery{}, err
	}
	ds, _, err := s.deliveries.FindDeliveries(r.Context(), consoleOf(r).p, callevents.DeliveryFilter{Extension: e, ID: id, Limit: 1})
	if err != nil {
		return callevents.Delivery{}, err
	}
	if len(ds) == 0 || id == "" {
		return callevents.Delivery{}, callevents.Errorf(callevents.CodeDeliveryNotFound, "Delivery not found.")
	}
	return ds[0], nil
}

func (s *Server) consoleDelivery(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d, err := s.findDelivery(r, strings.TrimSpace(q.Get("extension")), q.Get("id"))
	if err != nil {
		return err
	}
	data := deliveryData{D: d}
	data.Params, _ = url.ParseQuery(d.Payload)
	ces, _, err := s.callEvents.FindCallEvents(r.Context(), consoleOf(r).p, callevents.CallEventFilter{Extension: d.Extension, ID: &d.CallEventID, Limit: 1})
	switch {
	case callevents.ErrorCode(err, 0) == callevents.CodeCallEventNotFound:
		data.Gone = true
	case err != nil:
		return err
	case ces[0].Secret != "":
		// The signature each attempt was sent with: its webhook-timestamp
		// is the attempt's time, in seconds. The secret stays here.
		data.Signed = true
		for _, a := range d.History {
			data.Signatures = append(data.Signatures, callevents.WebhookSignature(ces[0].Secret, d.ID, a.At.Unix(), d.Payload))
		}
	}
	return s.render(w, r, http.StatusOK, "delivery", consolePage{Title: "Delivery " + d.ID, Notice: q.Get("notice"), Data: data})
}

func (s *Server) consoleResend(w http.ResponseWriter, r *http.Request) error {
	setOperation(r, "resend", callevents.CodeUpdateFailed)
	ext, id := strings.TrimSpace(r.PostFormValue("extension")), r.PostFormValue("id")
	e, err := callevents.ParseExtension(ext)
	if err != nil {
		return err
	}
	if s.deliveries == nil {
		return notConfigured("The delivery log")
	}
	if _, err := s.deliveries.ResendDelivery(r.Context(), consoleOf(r).p, e, id); err != nil {
		return err
	}
	v := url.Values{"extension": {ext}, "id": {id}, "notice": {"Queued again: it goes out with the same webhook-id."}}
	http.Redirect(w, r, PathConsole+"delivery?"+v.Encode(), http.StatusSeeOther)
	return nil
}
