package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/service"
)

// python is the interpreter that sees Debian's python3-zeep; the python3
// on PATH may be a pyenv shim that does not.
const python = "/usr/bin/python3"

type zeepDelivery struct {
	ID, PhoneCallEventID, Extension, CallID, State string
	Type, Sequence, Attempts                       *int
	Created, NextAttempt, Finished                 *string
	LastStatus                                     *int
	LastError                                      *string
	Attempt                                        []struct {
		Attempt    *int
		At         *string
		HTTPStatus *int `json:"httpStatus"`
		Error      *string
		LatencyMs  *int64
	}
}

type zeepFault struct {
	Code        *int
	Faultcode   string
	Faultstring string
	Error       string
}

type zeepReport struct {
	All struct {
		Total      int
		Deliveries []zeepDelivery
	}
	Failed struct {
		Total int
		IDs   []string
	}
	Resend struct {
		Result   string
		Delivery zeepDelivery
	}
	ResendAgain, ResendUnknown, TestUnknown zeepFault
	Test                                    struct {
		Result     string
		Delivered  *bool
		HTTPStatus *int `json:"httpStatus"`
		Error      *string
		LatencyMs  *int64
	}
	SOAP12 struct {
		Total  int
		States []string
		Fault  zeepFault
	} `json:"soap12"`
}

// Ensure a real SOAP client, zeep, reads the delivery operations from our
// served WSDL and gets responses that it parses against the schema: every
// field of a delivery and its attempts, a resend, a test, faults with
// their serviceFault, and the SOAP 1.2 port. Skips without zeep, except
// under CI=true.
func TestZeepDeliveryOperations(t *testing.T) {
	if err := exec.Command(python, "-c", "import zeep").Run(); err != nil {
		requireTool(t, "zeep ("+python+" with python3-zeep)")
	}
	b := setup(t, bundleOptions{})
	l := b.makeDeliveryLog(t)
	receiver := dispatchertest.NewReceiver(t, nil)
	status, body := b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>4</v1:type><v1:url>`+receiver.URL+`/answer-out</v1:url></v1:AddPhoneCallEvent>`)
	if status != 200 {
		t.Fatalf("add: HTTP %d\n%s", status, body)
	}
	testID := bodyElement(t, body).FindElement("phoneCallEvent/id").Text()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/zeep_deliveries.py")
	cmd.Env = append(os.Environ(),
		"CE_WSDL_URL="+b.srv.URL+service.PathSOAP+"?wsdl",
		"CE_TOKEN="+b.tokens["admin"],
		"CE_EXTENSION=0003*210",
		"CE_RESEND_ID="+l.failed,
		"CE_TEST_TYPE=4",
		"CE_TEST_ID="+testID,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zeep_deliveries.py: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var r zeepReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("zeep_deliveries.py output: %v\n%s", err, stdout.String())
	}

	if r.All.Total != 4 || len(r.All.Deliveries) != 4 {
		t.Errorf("all: total %d, %d deliveries, want 4", r.All.Total, len(r.All.Deliveries))
	}
	found := map[string]zeepDelivery{}
	for _, d := range r.All.Deliveries {
		found[d.ID] = d
		if d.Extension != "0003*210" || d.Type == nil || d.Attempts == nil || d.Created == nil || d.PhoneCallEventID == "" || d.CallID == "" ||
			d.Sequence == nil || *d.Sequence < 1 {
			t.Errorf("delivery as zeep read it: %+v", d)
		}
	}
	if d := found[l.failed]; d.State != "failed" || *d.Attempts != 1 || d.Finished == nil || d.NextAttempt != nil ||
		d.LastStatus == nil || *d.LastStatus != 500 || d.LastError == nil || *d.LastError != "http_status" ||
		len(d.Attempt) != 1 || *d.Attempt[0].HTTPStatus != 500 || *d.Attempt[0].LatencyMs != 12 || d.Attempt[0].At == nil {
		t.Errorf("failed delivery as zeep read it: %s", dump(d))
	}
	if d := found[l.delivered]; d.State != "delivered" || len(d.Attempt) != 1 || d.Attempt[0].LatencyMs == nil || *d.Attempt[0].LatencyMs != 0 || d.Attempt[0].Error != nil {
		t.Errorf("delivered delivery as zeep read it: %s", dump(d))
	}
	if d := found[l.untouched]; d.State != "pending" || d.Attempts == nil || *d.Attempts != 0 || d.NextAttempt == nil || d.Finished != nil || len(d.Attempt) != 0 {
		t.Errorf("new delivery as zeep read it (attempts 0 must be there): %s", dump(d))
	}
	if r.Failed.Total != 1 || len(r.Failed.IDs) != 1 || r.Failed.IDs[0] != l.failed {
		t.Errorf("state=failed: %+v", r.Failed)
	}
	if r.Resend.Result != "success" || r.Resend.Delivery.ID != l.failed || r.Resend.Delivery.State != "pending" || r.Resend.Delivery.NextAttempt == nil {
		t.Errorf("resend: %s", dump(r.Resend))
	}
	for name, tc := range map[string]struct {
		f    zeepFault
		code int
	}{"resend again": {r.ResendAgain, 400}, "resend unknown": {r.ResendUnknown, 256}, "test unknown": {r.TestUnknown, 255}, "soap12 paging": {r.SOAP12.Fault, 307}} {
		if tc.f.Code == nil || *tc.f.Code != tc.code || tc.f.Faultstring == "" || !(strings.HasSuffix(tc.f.Faultcode, "Client") || strings.HasSuffix(tc.f.Faultcode, "Sender")) {
			t.Errorf("%s: fault %s, want code %d", name, dump(tc.f), tc.code)
		}
	}
	if r.Test.Result != "success" || r.Test.Delivered == nil || !*r.Test.Delivered || r.Test.HTTPStatus == nil || *r.Test.HTTPStatus != 200 || r.Test.Error != nil || r.Test.LatencyMs == nil {
		t.Errorf("test: %s", dump(r.Test))
	}
	// call-C retrying, call-D new, call-A resent.
	if r.SOAP12.Total != 3 || strings.Join(r.SOAP12.States, ",") != "pending" {
		t.Errorf("SOAP 1.2 pending: %s", dump(r.SOAP12))
	}
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
