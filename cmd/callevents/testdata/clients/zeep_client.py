"""Drive the PhoneCallEvents SOAP service with zeep, the strictest client.

Run by TestE2ESOAPClients (clients_e2e_test.go) with /usr/bin/python3 (the
interpreter that sees Debian's python3-zeep). Everything comes from the
environment (see clients_e2e_test.go): CE_WSDL_URL, CE_TOKEN_URL,
CE_CLIENT_ID/CE_CLIENT_SECRET (admin), CE_SCOPED_CLIENT_ID/
CE_SCOPED_CLIENT_SECRET (scope org:0003), CE_EXTENSION, CE_FOREIGN_EXTENSION
and optionally CE_RAW_DIR, where every raw response envelope is saved for
schema validation.

Authenticates with an access token from the token endpoint in the
userCredentials header. Checks every observation itself, prints one JSON
object on stdout and exits 1 on the first mismatch.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import zeep
import zeep.exceptions
from lxml import etree
from zeep.plugins import HistoryPlugin

NS = "urn:callevents:phonecallevents:1"
CLIENT = "zeep"
env = os.environ
EXT = env["CE_EXTENSION"]
FOREIGN = env["CE_FOREIGN_EXTENSION"]
RAW_DIR = env.get("CE_RAW_DIR", "")
SECRET = "zeep-webhook-secret-0123456789"
HOOK = "https://hooks.example.com/" + CLIENT

report = {"client": CLIENT, "extension": EXT}
saved = 0  # responses seen, numbering the files in CE_RAW_DIR


def fail(msg):
    sys.stderr.write("zeep_client: %s\n" % msg)
    report["error"] = msg
    print(json.dumps(report, default=str))
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def token(client_id, secret):
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
    }).encode()
    try:
        with urllib.request.urlopen(env["CE_TOKEN_URL"], data=form, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        fail("token endpoint: HTTP %d %s" % (e.code, e.read()[:200]))
    expect(body.get("token_type") == "Bearer", "token_type %r" % body.get("token_type"))
    expect(body.get("expires_in") == 7200, "expires_in %r" % body.get("expires_in"))
    expect(isinstance(body.get("access_token"), str) and body["access_token"], "no access_token")
    return body["access_token"]


class Session:
    """One zeep client (SOAP 1.1 or 1.2 port) authenticated with a token."""

    def __init__(self, access_token, port="PhoneCallEventsPort"):
        self.history = HistoryPlugin()
        self.client = zeep.Client(env["CE_WSDL_URL"], plugins=[self.history])
        creds = self.client.get_element("{%s}userCredentials" % NS)
        self.client.set_default_soapheaders([creds(accessToken=access_token)])
        self.service = self.client.bind("PhoneCallEvents", port)
        self.tag = "soap12" if port.endswith("12") else "soap11"

    def call(self, op, **kw):
        try:
            return getattr(self.service, op)(**kw)
        finally:
            self.save(op)

    def save(self, op):
        global saved
        saved += 1
        if not RAW_DIR or self.history.last_received is None:
            return
        name = "%s-%s-%02d-%s.xml" % (CLIENT, self.tag, saved, op)
        with open(os.path.join(RAW_DIR, name), "wb") as f:
            f.write(etree.tostring(self.history.last_received["envelope"], xml_declaration=True, encoding="UTF-8"))

    def fault(self, op, **kw):
        """Call op expecting a SOAP fault; return what zeep exposes of it."""
        try:
            self.call(op, **kw)
        except zeep.exceptions.Fault as f:
            expect(f.detail is not None, "%s fault without detail" % op)
            sf = f.detail.find("{%s}serviceFault" % NS)
            expect(sf is not None, "%s fault detail has no serviceFault: %s" % (op, etree.tostring(f.detail)))
            return {
                "code": int(sf.findtext("{%s}code" % NS)),
                "message": sf.findtext("{%s}message" % NS),
                "faultcode": f.code,
                "faultstring": f.message,
            }
        fail("%s: expected a SOAP fault, got a response" % op)


def event_out(ev):
    """The parts of a zeep PhoneCallEvent the test looks at. zeep reads an
    empty xsd:string element (<note></note>) as None: that is the empty note."""
    return {
        "id": ev.id, "extension": ev.extension, "type": ev.type, "method": ev.method,
        "url": ev.url, "status": ev.status, "note": "" if ev.note is None else ev.note, "hasSecret": ev.hasSecret,
        "modified": ev.modified.isoformat() if ev.modified is not None else None,
    }


admin = Session(token(env["CE_CLIENT_ID"], env["CE_CLIENT_SECRET"]))

# 1. Add three Call Events: Dial-In/GET, Hangup/POST with a note and a secret, Answer-In/GET.
adds = [
    dict(extension=EXT, type=0, url=HOOK + "/dial-in"),
    dict(extension=EXT, type=2, url=HOOK + "/hangup", method=1, note="hangup note <&> \u00e9\u2713", secret=SECRET),
    dict(extension=EXT, type=3, url=HOOK + "/answer-in?x=1&y=2", method=0, status=1),
]
added = []
for a in adds:
    r = admin.call("AddPhoneCallEvent", **a)
    expect(r.result == "success", "Add result %r" % r.result)
    ev = event_out(r.phoneCallEvent)
    expect(re.fullmatch(r"[A-Za-z0-9]{30}", ev["id"] or ""), "Add id %r" % ev["id"])
    expect(ev["extension"] == EXT and ev["type"] == a["type"] and ev["url"] == a["url"], "Add echoed %r" % ev)
    expect(ev["method"] == a.get("method", 0) and ev["status"] == 1, "Add defaults %r" % ev)
    expect(ev["note"] == a.get("note", ""), "Add note %r" % ev["note"])
    expect(ev["hasSecret"] is ("secret" in a), "Add hasSecret %r" % ev["hasSecret"])
    expect(ev["modified"], "Add modified missing")
    added.append(ev)
ids = [e["id"] for e in added]
expect(len(set(ids)) == 3, "ids not distinct %r" % ids)
report["ids"] = ids
report["hasSecret"] = [e["hasSecret"] for e in added]
report["added"] = added

# 2. Get with paging and filters.
p1 = admin.call("GetPhoneCallEvents", extension=EXT, startIndex=0, count=2)
p2 = admin.call("GetPhoneCallEvents", extension=EXT, startIndex=2, count=2)
report["pages"] = [
    {"count": len(p1.phoneCallEvent), "total": p1.totalResults, "ids": [e.id for e in p1.phoneCallEvent]},
    {"count": len(p2.phoneCallEvent), "total": p2.totalResults, "ids": [e.id for e in p2.phoneCallEvent]},
]
expect(len(p1.phoneCallEvent) == 2 and p1.totalResults == 3, "page 1 %r" % report["pages"][0])
expect(len(p2.phoneCallEvent) == 1 and p2.totalResults == 3, "page 2 %r" % report["pages"][1])
paged = report["pages"][0]["ids"] + report["pages"][1]["ids"]
expect(sorted(paged) == sorted(ids), "pages %r, added %r" % (paged, ids))
byHangup = admin.call("GetPhoneCallEvents", extension=EXT, type=2)
report["byType"] = {"total": byHangup.totalResults, "ids": [e.id for e in byHangup.phoneCallEvent]}
expect(report["byType"] == {"total": 1, "ids": [ids[1]]}, "by type %r" % report["byType"])
byID = admin.call("GetPhoneCallEvents", extension=EXT, id=ids[0])
report["byId"] = {"total": byID.totalResults, "ids": [e.id for e in byID.phoneCallEvent]}
expect(report["byId"] == {"total": 1, "ids": [ids[0]]}, "by id %r" % report["byId"])
got = event_out(byID.phoneCallEvent[0])
expect(got["url"] == adds[0]["url"] and got["type"] == 0 and got["hasSecret"] is False, "by id event %r" % got)

# 3. Edit (url, note) and SetPhoneCallEventStatus, then read back.
newURL = HOOK + "/hangup-v2"
newNote = "edited by zeep"
r = admin.call("EditPhoneCallEvent", extension=EXT, type=2, id=ids[1], url=newURL, note=newNote)
expect(r.result == "success", "Edit result %r" % r.result)
r = admin.call("SetPhoneCallEventStatus", extension=EXT, type=3, id=ids[2], status=0)
expect(r.result == "success" and r.phoneCallEvent.status == 0, "SetStatus %r" % r)
e1 = event_out(admin.call("GetPhoneCallEvents", extension=EXT, id=ids[1]).phoneCallEvent[0])
e2 = event_out(admin.call("GetPhoneCallEvents", extension=EXT, id=ids[2]).phoneCallEvent[0])
report["edited"] = e1
report["statusSet"] = e2
expect(e1["url"] == newURL and e1["note"] == newNote, "edit read back %r" % e1)
expect(e1["method"] == 1 and e1["hasSecret"] is True, "edit kept method/secret %r" % e1)
expect(e2["status"] == 0 and e2["url"] == adds[2]["url"], "status read back %r" % e2)

# The SOAP 1.2 port of the same WSDL: a read and a fault.
admin12 = Session(token(env["CE_CLIENT_ID"], env["CE_CLIENT_SECRET"]), "PhoneCallEventsPort12")
g12 = admin12.call("GetPhoneCallEvents", extension=EXT)
report["soap12"] = {"total": g12.totalResults,
                    "fault": admin12.fault("GetPhoneCallEvents", extension="abc")}
expect(g12.totalResults == 3, "SOAP 1.2 total %r" % g12.totalResults)
expect(report["soap12"]["fault"]["code"] == 254, "SOAP 1.2 fault %r" % report["soap12"]["fault"])
expect(report["soap12"]["fault"]["faultcode"].endswith("Sender"), "SOAP 1.2 fault code %r" % report["soap12"]["fault"])

# 4. Delete by id, by type only, then all.
d1 = admin.call("DelPhoneCallEvent", extension=EXT, id=ids[0])
d2 = admin.call("DelPhoneCallEvent", extension=EXT, type=2)
d3 = admin.call("DelPhoneCallEvent", extension=EXT)
report["deleted"] = {"byId": list(d1.deletedId), "byType": list(d2.deletedId), "all": list(d3.deletedId)}
expect(d1.result == d2.result == d3.result == "success", "Del results")
expect(report["deleted"] == {"byId": [ids[0]], "byType": [ids[1]], "all": [ids[2]]}, "deleted %r" % report["deleted"])
final = admin.call("GetPhoneCallEvents", extension=EXT)
report["finalTotal"] = final.totalResults
expect(final.totalResults == 0 and len(final.phoneCallEvent) == 0, "final total %r" % final.totalResults)

# 5. Faults, read through zeep's own Fault API.
faults = {"extensionInvalid": admin.fault("AddPhoneCallEvent", extension="abc", type=0, url=HOOK + "/x")}
scoped = Session(token(env["CE_SCOPED_CLIENT_ID"], env["CE_SCOPED_CLIENT_SECRET"]))
own = scoped.call("GetPhoneCallEvents", extension=EXT)
report["scopedOwnTotal"] = own.totalResults
faults["outOfScope"] = scoped.fault("AddPhoneCallEvent", extension=FOREIGN, type=0, url=HOOK + "/x")
faults["badCredentials"] = Session("not-a-valid-token").fault("GetPhoneCallEvents", extension=EXT)
report["faults"] = faults
for name, code in (("extensionInvalid", 254), ("outOfScope", 103), ("badCredentials", 100)):
    f = faults[name]
    expect(f["code"] == code, "%s fault code %r" % (name, f))
    expect(f["faultcode"] in ("soap:Client", "Client") or f["faultcode"].endswith("}Client"), "%s faultcode %r" % (name, f))
    expect(f["faultstring"], "%s faultstring empty" % name)

print(json.dumps(report, default=str))
