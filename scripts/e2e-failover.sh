# e2e-failover.sh — the high-availability scenario of scripts/e2e-chain.sh (`e2e-chain.sh failover`;
# sourced by it, after its helpers: log, pass, fail, pause, free_ports, rpc, block_number,
# finalized_number, build, start_node, and its cleanup trap).
#
# Starts, on loopback: a 3-member etcd cluster; signer-a and signer-b (`exclave serve --config`,
# claims in etcd, the active-node lease on, both holding //Alice's keys); alice-1 and alice-2 (the
# demo node, `--remote-keystore` to both signers, each with its own client certificate, no local
# keys); bob, charlie and dave with local keys, on the four-validator chain `local4`. Then:
#   1. kill -9 the active alice node: the other takes over (measured in slots, from the signing
#      logs), alice keeps authoring and finality continues;
#   2. restart the killed node: it comes back as standby (signs nothing);
#   3. kill -9 the signer the active node prefers: alice continues through the other;
# and checks: bob's, charlie's and dave's nodes report no equivocation, no two chain headers by
# alice share a slot, no duty appears in the two signing logs with two payloads.
#
# Why four validators: GRANDPA finalizes with 2f + 1 of 3f + 1 votes. The standby node decides
# whether it votes when a round starts (`has_keys`), so the round in which the active node dies
# completes without alice; three validators tolerate no missing voter and finality stops there
# (measured, docs/e2e.md). `E2E_FAILOVER_CHAIN=local` runs the same scenario on three to see it.
# Environment: E2E_PHASE_SECONDS=60 (each phase's length), E2E_FAILOVER_CHAIN=local4, besides
# e2e-chain.sh's.

PHASE="${E2E_PHASE_SECONDS:-60}"
NODE_CHAIN="${E2E_FAILOVER_CHAIN:-local4}"
if ! command -v etcd >/dev/null; then
	[[ $(id -u) -eq 0 ]] || { log "etcd is needed (apt-get install etcd-server)"; exit 2; }
	log "installing etcd-server"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; } >"$TMP/apt-etcd.log" 2>&1 ||
		{ tail -20 "$TMP/apt-etcd.log"; log "could not install etcd-server"; exit 2; }
fi
command -v openssl >/dev/null || { log "openssl is needed"; exit 2; }
[[ -n "${E2E_SKIP_BUILD:-}" ]] || build
[[ -x "$NODE_BIN" && -x "$EXCLAVE_BIN" ]] || { log "missing $NODE_BIN or $EXCLAVE_BIN"; exit 2; }

read -r E0 E1 E2 P0 P1 P2 SA SB MA MB A1_P2P A1_RPC A2_P2P A2_RPC B_P2P B_RPC C_P2P C_RPC D_P2P D_RPC <<<"$(free_ports 20)"
log "chain $NODE_CHAIN; temp dir $TMP; etcd :$E0,:$E1,:$E2; signer-a :$SA, signer-b :$SB; alice-1 rpc :$A1_RPC, alice-2 rpc :$A2_RPC, bob :$B_RPC"

# --- etcd --------------------------------------------------------------------------------------
CLUSTER="m0=http://127.0.0.1:$P0,m1=http://127.0.0.1:$P1,m2=http://127.0.0.1:$P2"
for i in 0 1 2; do
	c="E$i"; p="P$i"
	etcd --name "m$i" --data-dir "$TMP/etcd$i" --listen-client-urls "http://127.0.0.1:${!c}" \
		--advertise-client-urls "http://127.0.0.1:${!c}" --listen-peer-urls "http://127.0.0.1:${!p}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${!p}" --initial-cluster "$CLUSTER" \
		--initial-cluster-token exclave-e2e --initial-cluster-state new >"$TMP/etcd$i.log" 2>&1 &
	PIDS+=($!)
done

# --- the PKI: one server certificate, one client certificate per alice node --------------------
PKI_DIR="$TMP/pki" bash "$ROOT/docker/gen-pki.sh" >"$TMP/pki.log" 2>&1 || { cat "$TMP/pki.log"; log "PKI failed"; exit 2; }

# --- bob first: the bootnode, and the genesis hash the signers are pinned to ---------------------
BOB_KEY=0000000000000000000000000000000000000000000000000000000000000002
BOB_PEER=12D3KooWHdiAxVd8uMQR1hGWXccidmfCwLqcMpGwR6QcTP6QRMuD
BOOTNODE="/ip4/127.0.0.1/tcp/$B_P2P/p2p/$BOB_PEER"
start_node bob "$B_P2P" "$B_RPC" "$BOB_KEY" --bob
for _ in $(seq 60); do GENESIS=$(rpc "$B_RPC" chain_getBlockHash '[0]' 2>/dev/null | tr -d '"') && [[ -n "$GENESIS" ]] && break; pause 1; done
[[ -n "${GENESIS:-}" ]] || { log "bob did not answer"; exit 2; }
log "genesis $GENESIS"

# --- two signers on etcd ---------------------------------------------------------------------------
signer_config() { # ID PORT METRICS
	mkdir -p "$TMP/$1"
	cat >"$TMP/$1/signer.toml" <<-TOML
		signer_id = "$1"
		chain = "$GENESIS"
		keystore_dir = "$TMP/$1/keystore"
		signing_log = "$TMP/$1/signing.log"
		[listen]
		address = "127.0.0.1:$2"
		tls_cert = "$TMP/pki/server.pem"
		tls_key = "$TMP/pki/server.key"
		client_ca = "$TMP/pki/ca.pem"
		[metrics]
		address = "127.0.0.1:$3"
		[babe]
		slot_duration_ms = $SLOT_MS
		[claims]
		backend = "etcd"
		endpoints = ["http://127.0.0.1:$E0", "http://127.0.0.1:$E1", "http://127.0.0.1:$E2"]
		[lease]
		validator = "alice"
		[[clients]]
		name = "alice-1"
		validators = ["alice"]
		[[clients]]
		name = "alice-2"
		validators = ["alice"]
	TOML
	for kt in babe gran imon beef; do echo "//Alice" | "$EXCLAVE_BIN" keys import --keystore "$TMP/$1/keystore" --key-type "$kt" >/dev/null; done
	echo "//Alice//audi" | "$EXCLAVE_BIN" keys import --keystore "$TMP/$1/keystore" --key-type audi >/dev/null
}
start_config_signer() { # ID METRICS
	"$EXCLAVE_BIN" serve --config "$TMP/$1/signer.toml" >>"$TMP/$1.log" 2>&1 &
	PIDS+=($!)
	eval "${1//-/_}_PID=$!"
	for _ in $(seq 100); do
		curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/ready" | grep -q 200 && return 0
		pause 0.2
	done
	tail -20 "$TMP/$1.log"; log "$1 did not become ready"; exit 2
}
signer_config signer-a "$SA" "$MA"
signer_config signer-b "$SB" "$MB"
start_config_signer signer-a "$MA"
start_config_signer signer-b "$MB"
log "signers ready (signer-a pid $signer_a_PID, signer-b pid $signer_b_PID)"

# --- alice-1, alice-2 (both signers, own certificates), charlie, dave -------------------------------------
start_alice() { # NAME P2P RPC NODEKEY URLS
	start_node "${1//-/_}" "$2" "$3" "$4" --validator --bootnodes "$BOOTNODE" \
		--remote-keystore "$5" --remote-keystore-ca "$TMP/pki/ca.pem" \
		--remote-keystore-cert "$TMP/pki/$1.pem" --remote-keystore-key "$TMP/pki/$1.key"
}
A1_URLS="https://127.0.0.1:$SA,https://127.0.0.1:$SB"
A2_URLS="https://127.0.0.1:$SB,https://127.0.0.1:$SA"
start_alice alice-1 "$A1_P2P" "$A1_RPC" 0000000000000000000000000000000000000000000000000000000000000011 "$A1_URLS"
pause 2
start_alice alice-2 "$A2_P2P" "$A2_RPC" 0000000000000000000000000000000000000000000000000000000000000012 "$A2_URLS"
start_node charlie "$C_P2P" "$C_RPC" 0000000000000000000000000000000000000000000000000000000000000003 --charlie --bootnodes "$BOOTNODE"
OTHERS=(bob charlie)
if [[ "$NODE_CHAIN" == local4 ]]; then
	start_node dave "$D_P2P" "$D_RPC" 0000000000000000000000000000000000000000000000000000000000000004 --dave --bootnodes "$BOOTNODE"
	OTHERS+=(dave)
fi
log "nodes started; phase 1 (both alice nodes up): ${PHASE}s"
pause "$PHASE"

# The active node: the client of the newest signed GRANDPA vote in either signing log.
active_node() {
	"$EXCLAVE_BIN" audit show --json "$TMP/signer-a/signing.log" "$TMP/signer-b/signing.log" 2>/dev/null | python3 -c '
import json, sys
best = (0, "")
for line in sys.stdin:
    e = json.loads(line)
    if e.get("decision") == "signed" and e.get("keyType") in ("gran", "babe") and e.get("timeMs", 0) > best[0]:
        best = (e["timeMs"], e["client"])
print(best[1])'
}
ACTIVE=$(active_node)
[[ "$ACTIVE" == alice-1 || "$ACTIVE" == alice-2 ]] || { fail "no alice node signed in phase 1"; exit 1; }
STANDBY=$([[ "$ACTIVE" == alice-1 ]] && echo alice-2 || echo alice-1)
pass "phase 1: $ACTIVE is the active node, $STANDBY standby"

# --- 1. kill -9 the active node ------------------------------------------------------------------
FINALIZED_AT_KILL=$(finalized_number "$B_RPC")
KILL_MS=$(date +%s%3N)
pid_var="${ACTIVE//-/_}_PID"; pid_var="${pid_var^^}"
kill -9 "${!pid_var}" 2>/dev/null; wait "${!pid_var}" 2>/dev/null || true
log "$ACTIVE killed (SIGKILL) at $KILL_MS; phase 2: ${PHASE}s"
pause "$PHASE"

# --- 2. restart it: it must come back as standby ---------------------------------------------------
RESTART_MS=$(date +%s%3N)
if [[ "$ACTIVE" == alice-1 ]]; then
	start_alice alice-1 "$A1_P2P" "$A1_RPC" 0000000000000000000000000000000000000000000000000000000000000011 "$A1_URLS"
else
	start_alice alice-2 "$A2_P2P" "$A2_RPC" 0000000000000000000000000000000000000000000000000000000000000012 "$A2_URLS"
fi
log "$ACTIVE restarted; phase 3: ${PHASE}s"
pause "$PHASE"

# --- 3. kill -9 the signer the active node prefers ---------------------------------------------------
PREFERRED=$([[ "$STANDBY" == alice-1 ]] && echo signer-a || echo signer-b)
OTHER_SIGNER=$([[ "$PREFERRED" == signer-a ]] && echo signer-b || echo signer-a)
SIGNER_KILL_MS=$(date +%s%3N)
pid_var="${PREFERRED//-/_}_PID"
kill -9 "${!pid_var}" 2>/dev/null; wait "${!pid_var}" 2>/dev/null || true
log "$PREFERRED (preferred by $STANDBY) killed; phase 4: ${PHASE}s"
pause "$PHASE"

# --- checks -------------------------------------------------------------------------------------------
for name in "${OTHERS[@]}" "${STANDBY//-/_}" "${ACTIVE//-/_}"; do
	pid_var="${name^^}_PID"
	kill -0 "${!pid_var}" 2>/dev/null && pass "${name//_/-}'s node is running" || fail "${name//_/-}'s node exited: $(tail -3 "$TMP/$name.log")"
done
BEST=$(block_number "$B_RPC"); FINALIZED=$(finalized_number "$B_RPC")
log "finalized #$FINALIZED_AT_KILL when $ACTIVE was killed, #$FINALIZED now (best #$BEST)"
[[ "$FINALIZED" -ge $((BEST - 12)) && "$FINALIZED" -ge 20 ]] && pass "finality continues: finalized #$FINALIZED, best #$BEST" || fail "finality lags: finalized #$FINALIZED, best #$BEST"
for name in "${OTHERS[@]}"; do
	if grep -iE 'equivocat' "$TMP/$name.log" >/dev/null; then fail "$name's log reports equivocation: $(grep -iE 'equivocat' "$TMP/$name.log" | head -2)"; else pass "$name's node reports no equivocation"; fi
done

set +e
# The signing logs are read through `exclave audit show --json` (records only), the one reader
# of their format; scripts/signing_log_checks.py holds the checks CI also runs.
for s in signer-a signer-b; do "$EXCLAVE_BIN" audit show --json "$TMP/$s/signing.log" >"$TMP/$s/records.jsonl"; done
python3 - "$B_RPC" "$TMP/signer-a/records.jsonl" "$TMP/signer-b/records.jsonl" "$SLOT_MS" "$KILL_MS" "$RESTART_MS" "$SIGNER_KILL_MS" "$ACTIVE" "$STANDBY" "$OTHER_SIGNER" "$ROOT/scripts" <<'PY'
import json, sys, urllib.request
sys.path.insert(0, sys.argv[11])
import signing_log_checks as slc
port, log_a, log_b = sys.argv[1], sys.argv[2], sys.argv[3]
slot_ms, kill_ms, restart_ms, signer_kill_ms = map(int, sys.argv[4:8])
killed, survivor, other_signer = sys.argv[8], sys.argv[9], sys.argv[10]
ALICE = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
fails = 0
def check(ok, msg):
    global fails
    print(("PASS  " if ok else "FAIL  ") + msg, flush=True)
    fails += 0 if ok else 1
def rpc(method, params=()):
    req = urllib.request.Request(f"http://127.0.0.1:{port}", headers={"content-type": "application/json"},
                                 data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode())
    return json.load(urllib.request.urlopen(req, timeout=10))["result"]

entries = []
for path in (log_a, log_b):
    entries += slc.load(open(path))
given = slc.released(entries)
double, duties = slc.duties_signed_twice(entries)
check(not double, f"no duty signed with two payloads across both signing logs ({duties} duties)" + (f": {list(double)[:3]}" if double else ""))

def gated(e):
    return e.get("decision") == "signed" and e.get("keyType") in ("babe", "gran")
after_kill = sorted((e["timeMs"], e) for e in entries if gated(e) and e["timeMs"] > kill_ms and e["client"] == survivor)
if after_kill:
    took = after_kill[0][0] - kill_ms
    check(True, f"takeover: {survivor} signed for alice {took} ms after {killed} was killed = {took / slot_ms:.1f} slots of {slot_ms} ms")
    seals = sorted(e["duty"]["slot"] for _, e in after_kill if (e.get("duty") or {}).get("kind") == "babeSeal")
    if seals:
        check(True, f"first seal by {survivor} after the kill: slot {seals[0]} ({seals[0] - kill_ms // slot_ms} slots after the kill's slot)")
    check(took <= 6000 + 1000 + 2 * slot_ms, f"takeover within the lease bound (6 s lease + 1 s renewal + 2 slots of grace): {took} ms")
    # GRANDPA: the new active node votes from the first round that starts after the takeover.
    last_round = max((e["duty"]["round"] for e in entries if gated(e) and e["keyType"] == "gran" and e["client"] == killed and e["timeMs"] <= kill_ms), default=0)
    rounds = sorted({e["duty"]["round"] for _, e in after_kill if e["keyType"] == "gran"})
    first_vote = next((t for t, e in after_kill if e["keyType"] == "gran"), None)
    check(len(rounds) >= 5 and first_vote is not None and first_vote - after_kill[0][0] <= 2 * slot_ms,
          f"{survivor} votes in GRANDPA from the first round after the takeover (within 2 slots of it): {len(rounds)} rounds"
          + (f", the first round {rounds[0]} {first_vote - after_kill[0][0]} ms after its first signature ({killed}'s last vote was in round {last_round})" if rounds else ""))
else:
    check(False, f"{survivor} signed nothing for alice after {killed} was killed")
restarted = [e for e in entries if gated(e) and e["timeMs"] > restart_ms and e["client"] == killed]
check(not restarted, f"{killed} came back as standby: {len(restarted)} BABE/GRANDPA signatures to it after its restart")
through_other = [e for e in entries if gated(e) and e["timeMs"] > signer_kill_ms + 2000 and e["signer"] == other_signer and e["client"] == survivor]
check(len(through_other) >= 5, f"after its preferred signer was killed, {survivor} signed through {other_signer}: {len(through_other)} BABE/GRANDPA signatures")

best = int(rpc("chain_getHeader")["number"], 16)
slots_by_alice, alice_blocks = {}, 0
authorities = None
dup = []
for n in range(1, best + 1):
    h = rpc("chain_getBlockHash", [n])
    hdr = rpc("chain_getHeader", [h])
    for x in hdr["digest"]["logs"]:
        raw = bytes.fromhex(x[2:])
        if raw[0] == 6 and raw[1:5] == b"BABE":
            body = raw[6:] if raw[5] & 3 == 0 else raw[7:]
            idx, slot = int.from_bytes(body[1:5], "little"), int.from_bytes(body[5:13], "little")
            if authorities is None:
                ep = bytes.fromhex(rpc("state_call", ["BabeApi_current_epoch", "0x", h])[2:])
                count = ep[24] >> 2
                authorities = [ep[25 + 40 * k: 25 + 40 * k + 32].hex() for k in range(count)]
            if authorities[idx] == ALICE:
                alice_blocks += 1
                if slot in slots_by_alice and slots_by_alice[slot] != h:
                    dup.append(slot)
                slots_by_alice[slot] = h
check(not dup, f"no two chain headers by alice share a slot ({alice_blocks} headers by alice in #{best})")
after = [s for s in slots_by_alice if s * slot_ms > kill_ms]
check(len(after) >= 3, f"alice kept authoring after the kill: {len(after)} of her blocks on chain since")
sys.exit(1 if fails else 0)
PY
PY_FAILS=$?
set -e
[[ $PY_FAILS -eq 0 ]] || FAILS=$((FAILS + 1))

echo
log "summary: best #$BEST, finalized #$FINALIZED; killed $ACTIVE then $PREFERRED; failures: $FAILS"
[[ $FAILS -eq 0 ]] && log "e2e-chain failover: PASS" || { log "e2e-chain failover: FAIL"; exit 1; }
