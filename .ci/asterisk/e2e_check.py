#!/usr/bin/python3
"""e2e_check.py RECEIVER_LOG CALLS_FILE [--count]

Checks what e2e_receiver.py logged against what each sipp call of e2e.sh must
have produced. CALLS_FILE has one line per call placed, in order:
    OUTCOME CALLEE FIRST_LINE
(FIRST_LINE = number of receiver log lines before the call was placed). Each
CallID belongs to the call in whose range of log lines it first appears.

Call Events were added on 0003*210 (the caller, POST) and on every callee
(GET, URL with ?src=e2e), all five types, at /hook/<endpoint>/<type>.

--count OUTCOME CALLEE FIRST_LINE: print "<seen> <needed>" for one call (used
by e2e.sh to wait), where seen = requests logged since FIRST_LINE.

Exit 0 when every check passes, 1 otherwise. Prints a PASS/FAIL table.
"""
import json
import sys
from collections import OrderedDict

ORG = "0003"
CALLER = "210"
CALLER_NAME = "Alice Ng"
TYPES = {0: "Dial-In", 1: "Dial-Out", 2: "Hangup", 3: "Answer-In", 4: "Answer-Out"}
PARAMS = ["CallID", "CallerIDNum", "CallerIDName", "CalledDID", "CalledExtension",
          "CallStatus", "CallFlow", "CallerExtension", "CalledNumber", "CallAPIID"]
FAILED_ONLY = {"BUSY", "NOANSWER", "CANCEL", "CONGESTION"}
# requests each outcome must produce at least (CHANUNAVAIL: the caller's Hangup)
NEEDED = {"ANSWER": 6, "BUSY": 4, "NOANSWER": 4, "CANCEL": 4, "CONGESTION": 4, "CHANUNAVAIL": 1}


def ext(n):
    return "%s*%s" % (ORG, n)


def load(path):
    recs = []
    with open(path) as f:
        for i, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            r["line"] = i
            parts = r["path"].strip("/").split("/")
            r["hookExt"], r["hookType"] = None, None
            if len(parts) == 3 and parts[0] == "hook" and parts[2].isdigit():
                r["hookExt"], r["hookType"] = parts[1], int(parts[2])
            recs.append(r)
    return recs


def read_calls(path):
    calls = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                calls.append({"outcome": p[0], "callee": p[1], "first": int(p[2])})
    return calls


class Table:
    def __init__(self):
        self.rows = []

    def add(self, outcome, what, ok, detail=""):
        self.rows.append((outcome, what, "PASS" if ok else "FAIL", detail))
        return ok

    def info(self, outcome, what, detail):
        self.rows.append((outcome, what, "info", detail))

    def failed(self):
        return [r for r in self.rows if r[2] == "FAIL"]

    def print(self):
        w0 = max([len(r[0]) for r in self.rows] + [7])
        w1 = max([len(r[1]) for r in self.rows] + [5])
        print("%-*s  %-*s  %-4s  %s" % (w0, "outcome", w1, "check", "", "detail"))
        print("%s  %s  ----  ------" % ("-" * w0, "-" * w1))
        for r in self.rows:
            print("%-*s  %-*s  %-4s  %s" % (w0, r[0], w1, r[1], r[2], r[3]))


def check_request(t, outcome, r, callee, flow, status, note=""):
    """The parameters of one request that was for (hookExt, hookType)."""
    p = r["params"]
    name = "%s %s%s" % (TYPES[r["hookType"]], ext(r["hookExt"]), note)
    problems = []
    missing = [k for k in PARAMS if k not in p]
    if missing:
        problems.append("missing %s" % ",".join(missing))
    order = [k for k in r["order"] if k in PARAMS]
    if not missing and order != PARAMS:
        problems.append("parameter order %s" % ",".join(order))
    want = OrderedDict([
        ("CallStatus", status), ("CallFlow", flow),
        ("CallerExtension", ext(CALLER)), ("CalledExtension", ext(callee)),
        ("CallerIDNum", CALLER), ("CallerIDName", CALLER_NAME),
        ("CalledNumber", callee), ("CalledDID", ""), ("CallAPIID", ""),
    ])
    for k, v in want.items():
        if k in p and p[k] != v:
            problems.append("%s=%r want %r" % (k, p[k], v))
    if r.get("event") != TYPES[r["hookType"]]:
        problems.append("X-CallEvents-Event %r" % r.get("event"))
    if not r.get("webhookId"):
        problems.append("no webhook-id")
    if r["hookExt"] == CALLER:
        if r["method"] != "POST" or r["query"]:
            problems.append("want POST with form body, got %s query=%s" % (r["method"], r["query"]))
    else:
        if r["method"] != "GET" or r["query"].get("src") != "e2e" or r["order"][:1] != ["src"]:
            problems.append("want GET ?src=e2e&<params>, got %s %s" % (r["method"], r["order"]))
    detail = "CallStatus=%s CallFlow=%s" % (p.get("CallStatus"), p.get("CallFlow"))
    if problems:
        detail += "  <- " + "; ".join(problems)
    return t.add(outcome, name, not problems, detail)


def check_call(t, call, reqs):
    outcome, callee = call["outcome"], call["callee"]
    ids = list(OrderedDict.fromkeys(r["params"].get("CallID", "") for r in reqs))
    if not t.add(outcome, "requests received", len(reqs) > 0,
                 "%d request(s), CallID %s" % (len(reqs), " ".join(ids) or "-")):
        return
    t.add(outcome, "one CallID for the call", len(ids) == 1 and ids[0] != "",
          "CallID %s" % ", ".join(repr(i) for i in ids))

    bad = [r for r in reqs if r["hookExt"] not in (CALLER, callee) or r["hookType"] not in TYPES]
    t.add(outcome, "only hooks of 210 and %s" % callee, not bad,
          ", ".join("%s %s" % (x["method"], x["path"]) for x in bad))

    # unique deliveries per (extension, type); the same webhook-id twice is a retry
    by = OrderedDict()
    for r in reqs:
        if r in bad:
            continue
        by.setdefault((r["hookExt"], r["hookType"]), []).append(r)
    for (e, ty), rs in by.items():
        wids = set(x.get("webhookId") for x in rs)
        if len(wids) > 1:
            t.add(outcome, "once: %s %s" % (TYPES[ty], ext(e)), False,
                  "%d distinct deliveries" % len(wids))
        elif len(rs) > 1:
            t.info(outcome, "retry: %s %s" % (TYPES[ty], ext(e)), "%d attempts, same webhook-id" % len(rs))

    def one(e, ty):
        rs = by.get((e, ty))
        return rs[0] if rs else None

    expected = []  # (ext, type, flow, status, required)
    if outcome == "CHANUNAVAIL":
        expected.append((CALLER, 2, "OUT", "CHANUNAVAIL", True))
        for e, ty in ((callee, 0), (CALLER, 4), (callee, 3)):
            r = one(e, ty)
            t.add(outcome, "no %s %s" % (TYPES[ty], ext(e)), r is None,
                  "" if r is None else "got one: CallStatus=%s" % r["params"].get("CallStatus"))
        # Dial-Out on the caller and Hangup on the unreachable callee are not
        # required (there is no callee leg); if sent, they must be right.
        for e, ty, flow, st in ((CALLER, 1, "OUT", "CALLING"), (callee, 2, "IN", "CHANUNAVAIL")):
            r = one(e, ty)
            if r is None:
                t.info(outcome, "%s %s" % (TYPES[ty], ext(e)), "not sent (optional: no callee leg)")
            else:
                check_request(t, outcome, r, callee, flow, st, " (optional)")
    else:
        expected += [(CALLER, 1, "OUT", "CALLING", True), (callee, 0, "IN", "CALLING", True)]
        if outcome == "ANSWER":
            expected += [(CALLER, 4, "OUT", "ANSWER", True), (callee, 3, "IN", "ANSWER", True)]
        expected += [(CALLER, 2, "OUT", outcome, True), (callee, 2, "IN", outcome, True)]
        if outcome in FAILED_ONLY:
            for e, ty in ((CALLER, 4), (callee, 3)):
                r = one(e, ty)
                t.add(outcome, "no %s %s" % (TYPES[ty], ext(e)), r is None,
                      "" if r is None else "got one: CallStatus=%s" % r["params"].get("CallStatus"))
    # the wrong direction on a leg (Dial-In on the caller, Dial-Out on the callee, ...)
    for e, ty in ((CALLER, 0), (CALLER, 3), (callee, 1), (callee, 4)):
        r = one(e, ty)
        if r is not None:
            t.add(outcome, "no %s %s" % (TYPES[ty], ext(e)), False,
                  "got one: CallFlow=%s" % r["params"].get("CallFlow"))

    for e, ty, flow, st, required in expected:
        r = one(e, ty)
        if r is None:
            t.add(outcome, "%s %s" % (TYPES[ty], ext(e)), False, "missing (want CallStatus=%s CallFlow=%s)" % (st, flow))
        else:
            check_request(t, outcome, r, callee, flow, st)

    # order: deliveries of one call to one receiver arrive in the order the
    # activity happened: every Dial before every Answer before every Hangup
    phase = {0: 0, 1: 0, 3: 1, 4: 1, 2: 2}
    seq = [phase[r["hookType"]] for r in reqs if r["hookType"] in phase and r not in bad]
    t.add(outcome, "order Dial < Answer < Hangup", seq == sorted(seq),
          " ".join("%s/%s" % (TYPES[r["hookType"]], r["hookExt"]) for r in reqs if r not in bad))


def main():
    args = sys.argv[1:]
    if len(args) == 5 and args[1] == "--count":
        log, _, outcome, callee, first = args
        recs = load(log)
        print(len([r for r in recs if r["line"] >= int(first)]), NEEDED[outcome])
        return 0
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    recs = load(args[0])
    calls = read_calls(args[1])
    t = Table()

    # a CallID belongs to the call in whose line range it first appears
    owner = {}
    for r in recs:
        cid = r["params"].get("CallID", "")
        if cid in owner:
            continue
        idx = None
        for i, c in enumerate(calls):
            if r["line"] >= c["first"]:
                idx = i
        owner[cid] = idx
    for i, c in enumerate(calls):
        reqs = [r for r in recs if owner.get(r["params"].get("CallID", "")) == i]
        check_call(t, c, reqs)
    stray = [r for r in recs if owner.get(r["params"].get("CallID", "")) is None]
    t.add("-", "no requests before the first call", not stray, "%d stray" % len(stray) if stray else "")
    tests = [r for r in recs if r.get("test")]
    if tests:
        t.add("-", "no X-CallEvents-Test requests", False, "%d" % len(tests))
    seen = set(c["outcome"] for c in calls)
    for o in NEEDED:
        if o not in seen:
            t.add(o, "call placed", False, "not in %s" % args[1])

    print()
    t.print()
    f = t.failed()
    print()
    per = OrderedDict()
    for r in t.rows:
        per.setdefault(r[0], []).append(r[2])
    print("summary: " + "  ".join("%s %s" % (o, "FAIL" if "FAIL" in s else "PASS") for o, s in per.items() if o != "-"))
    if f:
        print("RESULT: FAIL (%d of %d checks failed, %d requests logged)" %
              (len(f), len([r for r in t.rows if r[2] != "info"]), len(recs)))
        return 1
    print("RESULT: PASS (%d checks, %d requests logged)" % (len([r for r in t.rows if r[2] != "info"]), len(recs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
