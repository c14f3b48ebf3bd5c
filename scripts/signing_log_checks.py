#!/usr/bin/env python3
"""The signing-log assertions of the e2e scripts, on records read through
`exclave audit show --json` (the one reader of the log format: records only, no checkpoints).

    exclave audit show --json LOG... | python3 scripts/signing_log_checks.py

checks that no duty was released with two payloads and no BABE slot was sealed twice, prints
what it found, and exits 1 on a failed check. The e2e scripts import `load`, `released`,
`duties_signed_twice`, `seal_equivocations` and `refusals`; the CI test
`cli/tests/it/audit.rs` (`the_e2e_log_checks_run_on_a_real_signing_log`) runs this file on a
log the demo's signers wrote, so a change of the log format cannot break the e2e unseen.
"""
import json
import sys


def load(lines):
    """Records from `exclave audit show --json` lines (each must be a decision record)."""
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = json.loads(line)
        for field in ("decision", "method", "keyType", "public", "timeMs"):
            if field not in record:
                raise SystemExit(f"record {n} has no {field!r}: {line.strip()[:200]}")
        records.append(record)
    return records


def released(records):
    """Records whose signature reached a node."""
    return [r for r in records if r["decision"] in ("signed", "same-data")]


def duties_signed_twice(records):
    """(key type, public, duty) released with more than one payload hash."""
    by_duty = {}
    for r in released(records):
        if r.get("duty"):
            key = (r["keyType"], r["public"], json.dumps(r["duty"], sort_keys=True))
            by_duty.setdefault(key, set()).add(r["payloadHash"])
    return {k: v for k, v in by_duty.items() if len(v) > 1}, len(by_duty)


def seals_by_slot(records):
    """The first released BABE seal of each slot, and how many slots got a second, different one."""
    seals, equivocations = {}, 0
    for r in released(records):
        if r["method"] == "sign" and r["keyType"] == "babe" and (r.get("duty") or {}).get("kind") == "babeSeal":
            slot = r["duty"]["slot"]
            if slot in seals and seals[slot]["message"] != r["message"]:
                equivocations += 1
            seals.setdefault(slot, r)
    return seals, equivocations


def seal_equivocations(records):
    return seals_by_slot(records)[1]


def refusals(records):
    """Refused and failed requests, counted by method, key type and the start of the reason."""
    counted = {}
    for r in records:
        if r["decision"] in ("refused", "error"):
            key = f'{r["method"]}/{r["keyType"]}: {(r.get("reason") or "")[:70]}'
            counted[key] = counted.get(key, 0) + 1
    return counted


def main():
    records = load(sys.stdin)
    double, duties = duties_signed_twice(records)
    seals, equivocations = seals_by_slot(records)
    checks = [
        (not double, f"nothing signed twice: {duties} duties, none with two payload hashes" + (f" - {list(double)[:3]}" if double else "")),
        (equivocations == 0, f"no two BABE seals for one slot ({len(seals)} slots sealed)"),
        (len(released(records)) > 0, f"{len(released(records))} of {len(records)} records released a signature"),
    ]
    for ok, message in checks:
        print(("PASS  " if ok else "FAIL  ") + message)
    print(f"refused/error: {refusals(records) or 'none'}")
    failed = sum(1 for ok, _ in checks if not ok)
    print(f"signing-log checks failed: {failed} of {len(checks)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
