#!/usr/bin/env python3
"""The signing-log assertions of the e2e scripts, on records read through
`exclave audit show --json` (the one reader of the log format: records only, no checkpoints).

    exclave audit show --json LOG... | python3 scripts/signing_log_checks.py
    exclave audit show --json LOG... | python3 scripts/signing_log_checks.py --conflicting-beefy

checks that no duty was released with two payloads and no BABE slot was sealed twice, prints
what it found, and exits 1 on a failed check. The e2e scripts import `load`, `released`,
`duties_signed_twice`, `seal_equivocations`, `refusals`, `beefy_votes` and
`conflicting_beefy_request`; the CI test
`cli/tests/it/audit.rs` (`the_e2e_log_checks_run_on_a_real_signing_log`) runs this file on a
log the demo's signers wrote, so a change of the log format cannot break the e2e unseen.
With `--conflicting-beefy` it prints, instead, the `exclave_sign` request that re-signs the
newest released BEEFY vote's (set id, block) with another commitment (the e2e sends it to the
signer, which must refuse it; `the_e2e_conflicting_beefy_request_is_refused` checks the same
request against a real signer in CI).
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


def beefy_votes(records):
    """Released BEEFY votes: (set id, block) -> the record."""
    return {(r["duty"]["setId"], r["duty"]["blockNumber"]): r for r in released(records)
            if r["keyType"] == "beef" and (r.get("duty") or {}).get("kind") == "beefyVote"}


def keccak256(data):
    """Keccak-256 (the pre-SHA-3 padding BEEFY and Ethereum use; hashlib has only SHA3-256)."""
    mask = (1 << 64) - 1
    rc = [0x1, 0x8082, 0x800000000000808A, 0x8000000080008000, 0x808B, 0x80000001, 0x8000000080008081,
          0x8000000000008009, 0x8A, 0x88, 0x80008009, 0x8000000A, 0x8000808B, 0x800000000000008B,
          0x8000000000008089, 0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x800A,
          0x800000008000000A, 0x8000000080008081, 0x8000000000008080, 0x80000001, 0x8000000080008008]
    rot = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]

    def rol(v, n):
        return ((v << n) | (v >> (64 - n))) & mask if n else v

    def permute(a):
        for c in rc:
            col = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
            d = [col[(x - 1) % 5] ^ rol(col[(x + 1) % 5], 1) for x in range(5)]
            a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
            b = [[0] * 5 for _ in range(5)]
            for x in range(5):
                for y in range(5):
                    b[y][(2 * x + 3 * y) % 5] = rol(a[x][y], rot[x][y])
            a = [[b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
            a[0][0] ^= c
        return a

    rate = 136
    padded = bytearray(data) + b"\x01"
    padded += bytes(-len(padded) % rate)
    padded[-1] |= 0x80
    state = [[0] * 5 for _ in range(5)]
    for off in range(0, len(padded), rate):
        for i in range(rate // 8):
            state[i % 5][i // 5] ^= int.from_bytes(padded[off + 8 * i:off + 8 * i + 8], "little")
        state = permute(state)
    return b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def conflicting_beefy_request(record):
    """An `exclave_sign` request for the same (set id, block) as a released BEEFY vote, with
    another commitment: the last byte of the payload's data flipped (the SCALE commitment ends
    with the block number, u32, and the set id, u64). A signer must refuse it."""
    commitment = bytearray.fromhex(record["preimage"]["beefyCommitment"]["commitment"].removeprefix("0x"))
    commitment[-13] ^= 0xFF
    return {
        "jsonrpc": "2.0", "id": 1, "method": "exclave_sign",
        "params": [{
            "chain": "0x" + record["chain"].removeprefix("0x"),
            "keyType": "beef", "crypto": "ecdsa",
            "public": "0x" + record["public"].removeprefix("0x"),
            "message": "0x" + keccak256(bytes(commitment)).hex(),
            "context": {"beefyCommitment": {"commitment": "0x" + commitment.hex()}},
            "prehashed": True,
        }],
    }


def refusals(records):
    """Refused and failed requests, counted by method, key type and the start of the reason."""
    counted = {}
    for r in records:
        if r["decision"] in ("refused", "error"):
            key = f'{r["method"]}/{r["keyType"]}: {(r.get("reason") or "")[:70]}'
            counted[key] = counted.get(key, 0) + 1
    return counted


def main():
    # Known answers before any use.
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    records = load(sys.stdin)
    if sys.argv[1:] == ["--conflicting-beefy"]:
        votes = beefy_votes(records)
        if not votes:
            raise SystemExit("no released BEEFY vote in the log")
        newest = max(votes.values(), key=lambda r: r["timeMs"])
        print(json.dumps(conflicting_beefy_request(newest)))
        return
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
