#!/usr/bin/python3
"""e2e_api.py SERVER CLIENT_ID CLIENT_SECRET RECEIVER ENDPOINT...  (stdlib only)

Gets an access token from SERVER (/oauth/token.php, client credentials) and adds
a Call Event of every type (0 Dial-In, 1 Dial-Out, 2 Hangup, 3 Answer-In,
4 Answer-Out) on 0003*<ENDPOINT> for every ENDPOINT, over SOAP 1.1. The first
ENDPOINT (the caller) gets POST to RECEIVER/hook/<endpoint>/<type>; the others
GET to RECEIVER/hook/<endpoint>/<type>?src=e2e (so both methods and a URL that
already has a query are exercised). Prints the access token on stdout.
Exit 1 on any error.
"""
import json
import re
import sys
import urllib.parse
import urllib.request
from xml.sax.saxutils import escape

NS = "urn:callevents:phonecallevents:1"


def post(url, data, headers):
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def main():
    if len(sys.argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    server, cid, secret, receiver = sys.argv[1:5]
    endpoints = sys.argv[5:]
    st, body = post(server + "/oauth/token.php",
                    urllib.parse.urlencode({"grant_type": "client_credentials",
                                            "client_id": cid, "client_secret": secret}).encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})
    if st != 200:
        print("e2e_api: token: HTTP %d %s" % (st, body), file=sys.stderr)
        return 1
    token = json.loads(body)["access_token"]
    n = 0
    for i, ep in enumerate(endpoints):
        for ty in range(5):
            if i == 0:
                url, method = "%s/hook/%s/%d" % (receiver, ep, ty), 1
            else:
                url, method = "%s/hook/%s/%d?src=e2e" % (receiver, ep, ty), 0
            env = f"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="{NS}">
  <soapenv:Header><v1:userCredentials><v1:accessToken>{escape(token)}</v1:accessToken></v1:userCredentials></soapenv:Header>
  <soapenv:Body><v1:AddPhoneCallEvent>
    <v1:extension>0003*{escape(ep)}</v1:extension><v1:type>{ty}</v1:type>
    <v1:url>{escape(url)}</v1:url><v1:method>{method}</v1:method><v1:note>e2e.sh</v1:note>
  </v1:AddPhoneCallEvent></soapenv:Body>
</soapenv:Envelope>"""
            st, body = post(server + "/soap/PhoneCallEvents", env.encode(),
                            {"Content-Type": "text/xml; charset=utf-8",
                             "SOAPAction": '"%s#AddPhoneCallEvent"' % NS})
            if st != 200 or not re.search(r"<result>success</result>", body):
                print("e2e_api: AddPhoneCallEvent 0003*%s type %d: HTTP %d %s" % (ep, ty, st, body),
                      file=sys.stderr)
                return 1
            n += 1
    print("e2e_api: added %d Call Events on %s" % (n, " ".join("0003*" + e for e in endpoints)),
          file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
