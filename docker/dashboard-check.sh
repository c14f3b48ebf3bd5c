#!/usr/bin/env bash
# dashboard-check.sh — every panel of the Grafana dashboard (docker/grafana/dashboards/exclave.json)
# queried from a real Prometheus that scraped live signers, and the alert rules
# (docker/prometheus/alerts.yml) loaded and evaluated by it.
#
# Runs `exclave demo --metrics` (two signers, signer-a and signer-b, each serving /metrics on
# 127.0.0.1 at a port it writes to <dir>/signer-X/metrics.addr; a failover and a stopped signer
# part-way), and a Prometheus scraping both every second, on a free loopback port, with the alert
# rules. When the demo has passed, docker/dashboard_check.py runs each panel's queries over the
# run (Grafana's variables substituted: $signer and $node -> .*, $__rate_interval -> 5s, $__range
# -> the run's length) and requires series with values and every label the panel's legend names.
# Panels on Substrate node metrics (substrate_*) are listed as not checked: no node runs here.
# Prints one line per panel and `N passed, M failed`; exits 1 on any failure, 2 on a set-up error.
#
# Usage:   docker/dashboard-check.sh EXCLAVE_BIN        e.g. target/debug/exclave
# Needs:   prometheus (Debian `prometheus`), python3.
# Environment:
#   KEEP=1                 keep the temporary directory (demo files, Prometheus config, data, logs)
#   DEMO_SLOTS=80          slots of the demo (500 ms each)
#   DEMO_TIMEOUT=180       seconds the demo may take
#   DEMO_ADDR_TIMEOUT=60   seconds until both signers must have written their metrics address
#   PROMETHEUS=prometheus  the Prometheus binary
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -ne 1 ]]; then
	echo "usage: $0 EXCLAVE_BIN" >&2
	exit 2
fi
EXCLAVE_BIN="$1"
# A relative path is taken from where this script is called.
if [[ "$EXCLAVE_BIN" == */* && -d "$(dirname "$EXCLAVE_BIN")" ]]; then
	EXCLAVE_BIN="$(cd "$(dirname "$EXCLAVE_BIN")" && pwd)/$(basename "$EXCLAVE_BIN")"
fi
PROMETHEUS_BIN="${PROMETHEUS:-prometheus}"
DEMO_SLOTS="${DEMO_SLOTS:-80}"
DEMO_TIMEOUT="${DEMO_TIMEOUT:-180}"
ADDR_TIMEOUT="${DEMO_ADDR_TIMEOUT:-60}"
DASHBOARD="$ROOT/docker/grafana/dashboards/exclave.json"
RULES="$ROOT/docker/prometheus/alerts.yml"
SIGNERS=(signer-a signer-b)

for bin in "$EXCLAVE_BIN" "$PROMETHEUS_BIN" python3; do
	if ! command -v "$bin" >/dev/null; then
		echo "dashboard-check: $bin not found (or not executable)" >&2
		exit 2
	fi
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/exclave-dashboard.XXXXXX")"
DEMO_DIR="$tmp/demo"
# The demo, as run here: adjust if its flags change.
DEMO_CMD=("$EXCLAVE_BIN" demo --dir "$DEMO_DIR" --metrics --slots "$DEMO_SLOTS")
demo_pid=""
prom_pid=""

cleanup() {
	local code=$?
	trap - EXIT INT TERM
	# The demo runs in its own process group (setsid): whatever it started goes with it.
	[[ -n "$demo_pid" ]] && { kill -- "-$demo_pid" 2>/dev/null || kill "$demo_pid" 2>/dev/null || true; }
	[[ -n "$prom_pid" ]] && { kill "$prom_pid" 2>/dev/null || true; }
	for pid in $demo_pid $prom_pid; do wait "$pid" 2>/dev/null || true; done
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "dashboard-check: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$code"
}
trap cleanup EXIT
trap 'echo "dashboard-check: interrupted" >&2; exit 2' INT TERM

die() {
	echo "dashboard-check: $*" >&2
	exit 2
}
show_demo() {
	echo "--- demo output ($*)"
	cat "$tmp/demo.log" 2>/dev/null || true
	echo "---"
}
# `sleep` that lets the traps run at once.
pause() { sleep "$1" & wait $!; }

# --- the demo ------------------------------------------------------------------------------------
echo "demo: ${DEMO_CMD[*]}"
setsid=()
command -v setsid >/dev/null && setsid=(setsid -w)
"${setsid[@]}" "${DEMO_CMD[@]}" >"$tmp/demo.log" 2>&1 &
demo_pid=$!

addrs=()
deadline=$((SECONDS + ADDR_TIMEOUT))
for signer in "${SIGNERS[@]}"; do
	file="$DEMO_DIR/$signer/metrics.addr"
	addr=""
	while true; do
		if [[ -s "$file" ]]; then
			addr="$(tr -d ' \r\n' <"$file")"
			[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] && break
		fi
		if ! kill -0 "$demo_pid" 2>/dev/null; then
			show_demo "it exited before writing $file"
			die "the demo exited before its signers wrote their metrics address (does it have --metrics?)"
		fi
		if ((SECONDS >= deadline)); then
			show_demo "so far"
			die "no metrics address in $file after ${ADDR_TIMEOUT}s${addr:+ (it holds '$addr', not 127.0.0.1:PORT)}"
		fi
		pause 0.1
	done
	addrs+=("$addr")
	echo "demo: $signer serves metrics on $addr"
done

# --- Prometheus ----------------------------------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
prom_url="http://127.0.0.1:$port"
cat >"$tmp/prometheus.yml" <<EOF
# Written by docker/dashboard-check.sh: the demo's two signers, every second.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: exclave
    static_configs:
      - targets: ["${addrs[0]}"]
        labels: { signer: ${SIGNERS[0]} }
      - targets: ["${addrs[1]}"]
        labels: { signer: ${SIGNERS[1]} }
EOF
"$PROMETHEUS_BIN" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$port" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
ready() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=1)' "$prom_url" 2>/dev/null; }
deadline=$((SECONDS + 30))
until ready; do
	if ! kill -0 "$prom_pid" 2>/dev/null || ((SECONDS >= deadline)); then
		echo "--- prometheus log"; tail -n 30 "$tmp/prometheus.log"; echo "---"
		die "Prometheus did not become ready on $prom_url"
	fi
	pause 0.2
done
start="$(date +%s)"
echo "prometheus: ready on $prom_url (config $tmp/prometheus.yml)"

# --- the run -------------------------------------------------------------------------------------
deadline=$((SECONDS + DEMO_TIMEOUT))
while kill -0 "$demo_pid" 2>/dev/null; do
	if ((SECONDS >= deadline)); then
		show_demo "so far"
		die "the demo did not finish within ${DEMO_TIMEOUT}s"
	fi
	pause 0.5
done
demo_rc=0
wait "$demo_pid" || demo_rc=$?
demo_pid=""
if [[ $demo_rc -ne 0 ]]; then
	show_demo "exit $demo_rc"
	echo "dashboard-check: the demo failed (exit $demo_rc); nothing checked"
	exit 1
fi
echo "demo: passed (KEEP=1 keeps its output, $tmp/demo.log)"
# The last scrapes and rule evaluations after the demo's end.
pause 3
end="$(date +%s)"

# --- the checks ----------------------------------------------------------------------------------
python3 "$ROOT/docker/dashboard_check.py" --prometheus "$prom_url" --dashboard "$DASHBOARD" \
	--start "$start" --end "$end" --step 1s --rate-interval 5s --rules "$RULES"
