#!/usr/bin/env python3
"""Summarises a run of the network-policy-api conformance tests (the
events of `go tool test2json`): every test of the suite (a subtest of
TestConformance) with passed, FAILED (its first failing case and message)
or skipped (and why), its time and how many of its cases passed; then the
cases' counts and "N passed, N failed, N skipped" of the tests. Writes the tests' whole output as
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


def count(names):
    n = {"pass": 0, "fail": 0, "skip": 0}
    for name in names:
        n[result[name][0]] += 1
    return n


# the suite's tests (ShortName), each with the cases it runs as subtests
tops = [n for n in order if "/" not in n]
rows = []
for name in tops:
    action, t = result[name]
    subs = [n for n in order if n.startswith(name + "/")]
    sc = count(subs)
    of = f"{sc['pass']} of {len(subs)} cases passed" if subs else ""
    if action == "pass":
        rows.append(f"passed  {name} ({t:.0f}s){': ' + of if of else ''}")
    elif action == "skip":
        rows.append(f"skipped {name}: {first_message(name, action)}")
    else:
        bad = [n for n in subs if result[n][0] == "fail"]
        why = first_message(bad[0], "fail") if bad else first_message(name, "fail")
        where = f" (first failed case: {bad[0][len(name) + 1:]})" if bad else ""
        rows.append(f"FAILED  {name} ({t:.0f}s): {of + '; ' if of else ''}{why}{where}")
for r in rows:
    print(r)
cases = count([n for n in order if "/" in n])
print(f"cases: {cases['pass']} passed, {cases['fail']} failed, {cases['skip']} skipped")
n = count(tops)
print(f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped ({secs}s)")
sys.exit(0 if order else 1)
