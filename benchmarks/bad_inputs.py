"""Every bad input the test suite tries, as a table: the command, its exit status and the error line.

Runs the tests with GANCLI_RECORD_FAILURES set (tests/conftest.py's `cli` then records each command
that exits non-zero) and counts what must be zero: tracebacks, generic `XxxError: ...` messages, errors of more than one
line, and "this is a bug" lines (except the one a test raises on purpose); any of them fails the run.

    python benchmarks/bad_inputs.py [pytest arguments, default: the whole suite] > docs/bad-inputs.md

The pytest progress goes to stderr, the table to stdout; each test's temporary folder is shown as TMP.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TMP = re.compile(r"/tmp/pytest-of-[^/\s']+/pytest-\d+/(popen-gw\d+/)?[^/\s']+")  # each test's own folder: the same in every run
INJECTED = "expected size 32==32"  # tests/test_trust.py raises this on purpose to test how a bug is reported
GENERIC = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception): ")  # "Error: ValueError: ..." names neither problem nor fix


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "failures.jsonl"
        record.touch()
        args = sys.argv[1:] or ["tests", "-q", "-p", "no:cacheprovider"]
        done = subprocess.run([sys.executable, "-m", "pytest", *args], env=dict(os.environ, GANCLI_RECORD_FAILURES=str(record)), stdout=sys.stderr)
        rows = [json.loads(line) for line in record.read_text().splitlines()]
    seen, counts = set(), {"traceback": 0, "generic": 0, "several error lines": 0, "bug lines": 0, "silent": 0}
    print("| command | exit | message |\n| --- | ---: | --- |")
    for row in rows:
        row["args"] = [TMP.sub("TMP", a) for a in row["args"]]
        row["err"] = TMP.sub("TMP", row["err"])
        errors = [line for line in row["err"].splitlines() if line.startswith("Error")]
        message = errors[-1] if errors else row["err"].strip().splitlines()[-1] if row["err"].strip() else "(nothing)"
        key = (tuple(row["args"]), message)
        if key in seen:
            continue
        seen.add(key)
        counts["traceback"] += "Traceback" in row["err"]
        counts["generic"] += bool(GENERIC.search(message))
        counts["several error lines"] += len(errors) > 1
        counts["bug lines"] += "this is a bug" in message and INJECTED not in message  # the one test of the bug line itself
        counts["silent"] += not row["err"].strip()  # the tests' torchrun ranks other than 0 say nothing, by design
        command = " ".join(row["args"]).replace("|", "\\|")
        print(f"| `gancli {command}` | {row['code']} | {message.replace('|', '/')} |")
    print(f"\n{len(seen)} distinct failing commands; " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    sys.exit(done.returncode or int(any(counts[k] for k in ("traceback", "generic", "several error lines", "bug lines"))))


if __name__ == "__main__":
    main()
