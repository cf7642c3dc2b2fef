#!/usr/bin/env python3
"""Summarises the e2e binary's JUnit report: every test the focus selected
(not those ginkgo filtered out) with passed/failed/skipped and its time,
each failure's first message line, then "N passed, N failed, N skipped".
Exits 1 if a test failed or the report holds no test.

usage: junit.py REPORT.xml [SECONDS]
"""
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1]
secs = sys.argv[2] if len(sys.argv) > 2 else None
root = ET.parse(path).getroot()
passed = failed = skipped = 0
for tc in root.iter("testcase"):
    name = tc.get("name", "")
    # ginkgo's own suite hooks
    if name.startswith("[SynchronizedBeforeSuite]") or name.startswith("[SynchronizedAfterSuite]") \
            or name.startswith("[ReportAfterSuite]") or name.startswith("[ReportBeforeSuite]") \
            or name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]"):
        if tc.find("failure") is not None or tc.find("error") is not None:
            f = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
            print(f"FAILED  {name}: {(f.get('message') or f.text or '').strip().splitlines()[:1]}")
            failed += 1
        continue
    status = tc.get("status", "")
    t = float(tc.get("time", "0") or 0)
    sk = tc.find("skipped")
    if sk is not None:
        # not selected by the focus/skip: not part of the run
        if status == "skipped" and "in the spec" not in (sk.get("message") or "") and \
                (sk.get("message") or "").startswith("skipped"):
            pass
        msg = (sk.get("message") or "").strip()
        if status in ("pending",) or msg == "" or msg.startswith("skipped -") is False and "Skip" not in msg:
            pass
        if tc.get("status") == "skipped" and msg.startswith("skipped"):
            # skipped by a Skip() in the test (a missing feature), listed
            skipped += 1
            print(f"skipped {name} ({t:.0f}s): {msg.splitlines()[0][:200]}")
        continue
    f = tc.find("failure")
    if f is None:
        f = tc.find("error")
    if f is not None:
        failed += 1
        msg = (f.get("message") or f.text or "").strip().splitlines()
        print(f"FAILED  {name} ({t:.0f}s): {msg[0][:300] if msg else ''}")
    else:
        passed += 1
        print(f"passed  {name} ({t:.0f}s)")
total = passed + failed + skipped
print(f"{passed} passed, {failed} failed, {skipped} skipped" + (f" in {secs}s" if secs else ""))
sys.exit(1 if failed or total == 0 else 0)
