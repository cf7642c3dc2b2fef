#!/usr/bin/env python3
"""Summarises the e2e binary's JUnit report: every test the focus selected
with passed, FAILED or skipped and its time (a failure with its first
message line, a skip with its reason), then "N passed, N failed, N
skipped". Tests outside the focus are not listed; tests inside it that the
skip pattern took out are listed as skipped with REASON.
Exits 1 if a test failed or none ran.

usage: junit.py REPORT.xml SECONDS FOCUS SKIP REASON
"""
import re
import sys
import xml.etree.ElementTree as ET

path, secs, focus, skip, reason = sys.argv[1:6]
root = ET.parse(path).getroot()
passed = failed = skipped = 0
lines = []
for tc in root.iter("testcase"):
    name = tc.get("name", "")
    t = float(tc.get("time", "0") or 0)
    fail = tc.find("failure")
    if fail is None:
        fail = tc.find("error")
    if not name.startswith("[It]"):
        # suite set-up and reports: listed only when they fail
        if fail is not None:
            failed += 1
            msg = (fail.get("message") or fail.text or "").strip().splitlines()
            lines.append(f"FAILED  {name}: {msg[0][:300] if msg else ''}")
        continue
    sk = tc.find("skipped")
    if sk is not None:
        msg = (sk.get("message") or "").strip()
        if msg.startswith("skipped - "):
            skipped += 1
            lines.append(f"skipped {name}: {msg[len('skipped - '):].splitlines()[0][:200]}")
        elif msg == "skipped" and re.search(focus, name) and re.search(skip, name):
            skipped += 1
            lines.append(f"skipped {name}: {reason}")
        continue
    if fail is not None:
        failed += 1
        msg = (fail.get("message") or fail.text or "").strip().splitlines()
        lines.append(f"FAILED  {name} ({t:.0f}s): {msg[0][:300] if msg else ''}")
    else:
        passed += 1
        lines.append(f"passed  {name} ({t:.0f}s)")
for ln in sorted(lines, key=lambda s: s.split(" ", 1)[1]):
    print(ln)
print(f"{passed} passed, {failed} failed, {skipped} skipped ({secs}s)")
sys.exit(1 if failed or passed == 0 else 0)
