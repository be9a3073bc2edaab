#!/usr/bin/env python3
"""Reads the logs of the test command's suites and prints one summary line.

Usage: test-summary.py CARGO_LOG [NODE_LOG]

- Every workspace member must have had its tests run in CARGO_LOG (its unit tests,
  integration tests or doc tests): a crate whose tests were silently left out fails.
- The closing line is `N passed, N failed, N skipped` over every suite.
"""
import json
import re
import subprocess
import sys

cargo_log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
node_log = open(sys.argv[2], encoding="utf-8", errors="replace").read() if len(sys.argv) > 2 else ""

passed = failed = skipped = 0
for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", cargo_log):
    passed += int(m.group(1))
    failed += int(m.group(2))
    skipped += int(m.group(3))
rust = (passed, failed, skipped)

# node --test's spec reporter closes with "ℹ pass N", "ℹ fail N", "ℹ skipped N".
for key, name in (("pass", "passed"), ("fail", "failed"), ("cancelled", "failed"),
                  ("skipped", "skipped")):
    for m in re.finditer(rf"^\S* ?{key} (\d+)$", node_log, re.M):
        n = int(m.group(1))
        if name == "passed":
            passed += n
        elif name == "failed":
            failed += n
        else:
            skipped += n

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"]))
missing = []
for pkg in meta["packages"]:
    names = {t["name"].replace("-", "_") for t in pkg["targets"]}
    ran = any(
        re.search(rf"Running \S+ \(\S*/deps/{re.escape(n)}-[0-9a-f]+\)", cargo_log)
        or re.search(rf"Doc-tests {re.escape(n)}\b", cargo_log)
        for n in names
    )
    if not ran:
        missing.append(pkg["name"])

print(f"rust: {rust[0]} passed, {rust[1]} failed, {rust[2]} ignored")
if node_log:
    print(f"browser: {passed - rust[0]} passed, {failed - rust[1]} failed, {skipped - rust[2]} skipped")
if missing:
    print(f"test-summary: no tests of {', '.join(missing)} ran: every crate's tests must run",
          file=sys.stderr)
    failed += len(missing)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
