#!/usr/bin/env python3
"""Summarises a run of the network-policy-api conformance tests (the
events of `go tool test2json`): every subtest of TestConformance with
passed, FAILED (and its first message) or skipped (and why) and its time,
then "N passed, N failed, N skipped". Writes the tests' whole output as
text to LOG. Exits 1 only if the suite did not run (no subtest reported).

usage: summary.py EVENTS.json SECONDS LOG
"""
import json
import re
import sys

path, secs, log = sys.argv[1:4]
out = {}       # test -> its output lines
result = {}    # subtest -> (action, seconds)
order = []
with open(path) as f, open(log, "w") as lf:
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            lf.write(line)
            continue
        test = ev.get("Test", "")
        if ev.get("Action") == "output":
            lf.write(ev.get("Output", ""))
            out.setdefault(test, []).append(ev.get("Output", ""))
        elif ev.get("Action") in ("pass", "fail", "skip") and test.startswith("TestConformance/"):
            name = test[len("TestConformance/"):]
            if name not in result:
                order.append(name)
            result[name] = (ev["Action"], ev.get("Elapsed", 0))
        elif ev.get("Action") == "fail" and test == "TestConformance" and not result:
            # the set-up failed before any subtest ran
            lines = [ln.strip() for ln in out.get(test, [])]
            msg = [f"{ln} {lines[i + 1] if i + 1 < len(lines) else ''}" for i, ln in enumerate(lines)
                   if ln.startswith("Error:")]
            msg += [ln for ln in lines if re.search(r"timed out|context deadline", ln)]
            why = re.sub(r"\s+", " ", msg[0])[:300] if msg else ""
            print(f"FAILED  TestConformance set-up: {why}")


def first_message(name, action):
    """the first line that says why: an assertion, a FAILED poke, a skip"""
    lines = [ln.rstrip() for ln in out.get("TestConformance/" + name, [])]
    pats = [r"Skipping", r"Error:|Error Trace|FAILED|Expected|timed out|panic"] if action == "skip" else \
           [r"Expected connection|Error:\s|timed out|panic|FAILED to execute"]
    for pat in pats:
        for i, ln in enumerate(lines):
            if re.search(pat, ln):
                msg = ln.strip()
                if msg.startswith("Error:") or msg == "Error:":
                    msg += " " + (lines[i + 1].strip() if i + 1 < len(lines) else "")
                return re.sub(r"\s+", " ", msg)[:300]
    return ""


passed = failed = skipped = 0
rows = []
for name in order:
    action, t = result[name]
    if action == "pass":
        passed += 1
        rows.append(f"passed  {name} ({t:.0f}s)")
    elif action == "skip":
        skipped += 1
        rows.append(f"skipped {name}: {first_message(name, action)}")
    else:
        failed += 1
        rows.append(f"FAILED  {name} ({t:.0f}s): {first_message(name, action)}")
for r in rows:
    print(r)
print(f"{passed} passed, {failed} failed, {skipped} skipped ({secs}s)")
sys.exit(0 if order else 1)
