#!/usr/bin/python3
"""Summarise raw AMI transcripts (service/ami/testdata/*.ami), one line per event:
Event, channel, ids and the fields that matter for call activity.
usage: ami_summary.py FILE.ami..."""
import sys

KEYS = ["Channel", "CallerIDNum", "CallerIDName", "Exten", "Uniqueid", "Linkedid",
        "DestChannel", "DestCallerIDNum", "DestExten", "DestUniqueid", "DestLinkedid",
        "DialString", "DialStatus", "Cause", "Cause-txt", "TechCause", "Variable", "Value"]
for path in sys.argv[1:]:
    data = open(path, "rb").read().decode()
    assert "\n" not in data.replace("\r\n", ""), path + ": bare LF"
    blocks = data.split("\r\n\r\n")
    print("==", path, "(%d bytes, banner %r)" % (len(data), data.split("\r\n", 1)[0]))
    for b in blocks:
        if not b.strip():
            continue
        m = {}
        for line in b.split("\r\n"):
            k, _, v = line.partition(": ")
            m.setdefault(k, v)
        if "Event" not in m:
            print("  ", b.replace("\r\n", " | "))
            continue
        print("  %-18s" % m["Event"], " ".join("%s=%s" % (k, m[k]) for k in KEYS if k in m and m[k] != ""))
