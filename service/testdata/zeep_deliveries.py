"""Call the delivery operations of PhoneCallEvents with zeep, a strict client.

Run by TestZeepDeliveryOperations (zeep_test.go) with /usr/bin/python3 (the
interpreter that sees Debian's python3-zeep). Everything comes from the
environment: CE_WSDL_URL (the service's ?wsdl), CE_TOKEN (an admin access
token), CE_EXTENSION, CE_RESEND_ID (a failed delivery), CE_TEST_TYPE and
CE_TEST_ID (a Call Event whose receiver answers).

zeep loads the WSDL from the server, so every response is parsed against
our schema. The script prints what it saw as one JSON object; the Go test
asserts on it. It exits 1 only when zeep itself fails.
"""

import json
import os
import sys

import zeep
import zeep.exceptions

NS = "urn:callevents:phonecallevents:1"
env = os.environ
EXT = env["CE_EXTENSION"]


def session(port):
    client = zeep.Client(env["CE_WSDL_URL"])
    creds = client.get_element("{%s}userCredentials" % NS)
    client.set_default_soapheaders([creds(accessToken=env["CE_TOKEN"])])
    return client.bind("PhoneCallEvents", port)


def when(value):
    return value.isoformat() if value is not None else None


def delivery_out(d):
    return {
        "id": d.id, "phoneCallEventId": d.phoneCallEventId, "extension": d.extension,
        "type": d.type, "callId": d.callId, "sequence": d.sequence, "state": d.state, "attempts": d.attempts,
        "created": when(d.created), "nextAttempt": when(d.nextAttempt), "finished": when(d.finished),
        "lastStatus": d.lastStatus, "lastError": d.lastError,
        "attempt": [{
            "attempt": a.attempt, "at": when(a.at), "httpStatus": a.httpStatus,
            "error": a.error, "latencyMs": a.latencyMs,
        } for a in d.attempt],
    }


def fault(call, **kw):
    try:
        call(**kw)
    except zeep.exceptions.Fault as f:
        sf = f.detail.find("{%s}serviceFault" % NS) if f.detail is not None else None
        return {
            "code": int(sf.findtext("{%s}code" % NS)) if sf is not None else None,
            "faultcode": f.code,
            "faultstring": f.message,
        }
    return {"error": "no fault"}


try:
    svc = session("PhoneCallEventsPort")
    report = {}

    all_ = svc.GetPhoneCallEventDeliveries(extension=EXT)
    report["all"] = {"total": all_.totalResults, "deliveries": [delivery_out(d) for d in all_.delivery]}
    failed = svc.GetPhoneCallEventDeliveries(extension=EXT, state="failed", startIndex=0, count=10)
    report["failed"] = {"total": failed.totalResults, "ids": [d.id for d in failed.delivery]}

    r = svc.ResendPhoneCallEventDelivery(extension=EXT, id=env["CE_RESEND_ID"])
    report["resend"] = {"result": r.result, "delivery": delivery_out(r.delivery)}
    report["resendAgain"] = fault(svc.ResendPhoneCallEventDelivery, extension=EXT, id=env["CE_RESEND_ID"])
    report["resendUnknown"] = fault(svc.ResendPhoneCallEventDelivery, extension=EXT, id="dlv_unknown")

    t = svc.TestPhoneCallEvent(extension=EXT, type=int(env["CE_TEST_TYPE"]), id=env["CE_TEST_ID"])
    report["test"] = {"result": t.result, "delivered": t.delivered, "httpStatus": t.httpStatus,
                      "error": t.error, "latencyMs": t.latencyMs}
    report["testUnknown"] = fault(svc.TestPhoneCallEvent, extension=EXT, type=0, id="unknown")

    svc12 = session("PhoneCallEventsPort12")
    g12 = svc12.GetPhoneCallEventDeliveries(extension=EXT, state="pending")
    report["soap12"] = {"total": g12.totalResults, "states": sorted({d.state for d in g12.delivery}),
                        "fault": fault(svc12.GetPhoneCallEventDeliveries, extension=EXT, count=0)}
except Exception as e:  # zeep could not call or parse: the Go test shows this
    sys.stderr.write("zeep_deliveries: %s: %s\n" % (type(e).__name__, e))
    sys.exit(1)

print(json.dumps(report))
