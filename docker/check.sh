#!/usr/bin/env bash
# check.sh — what can be checked of the compose demo without a Docker engine (run by .ci/run):
# the compose file resolves (`docker-compose config -q`: syntax, schema, anchors, depends_on), the
# Grafana dashboard is JSON, the Prometheus and Grafana provisioning files are YAML, the
# Prometheus config and its alert rules load (`promtool check config`) and the rules pass their
# unit tests (`promtool test rules`), the TOML files parse, and the shell scripts have no syntax
# errors. It builds no image and starts nothing (docker/dashboard-check.sh, which runs a real
# Prometheus against the demo's signers, needs a built `exclave`).
# Needs docker-compose (Debian `docker-compose`), promtool (Debian `prometheus`) and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

docker-compose -f docker-compose.yml config -q
python3 -m json.tool docker/grafana/dashboards/exclave.json >/dev/null
python3 - <<'PY'
import glob, sys, tomllib
for path in sorted(glob.glob("docker/*.toml")):
    with open(path, "rb") as f:
        tomllib.load(f)
try:
    import yaml
except ImportError:
    print("check: python3 yaml missing, YAML files not parsed", file=sys.stderr)
else:
    for path in ["docker/prometheus.yml"] + sorted(glob.glob("docker/grafana/provisioning/*/*.yml")):
        with open(path) as f:
            yaml.safe_load(f)
PY
# rule_files in prometheus.yml, and in the test file, are relative to the file that names them.
promtool check config docker/prometheus.yml >/dev/null
promtool test rules docker/prometheus/alerts.test.yml >/dev/null
for script in docker/init/*.sh; do sh -n "$script"; done
bash -n docker/gen-pki.sh
bash -n docker/dashboard-check.sh
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' docker/dashboard_check.py
echo "docker: compose config, dashboard JSON, prometheus/grafana YAML, alert rules and their tests, TOML and scripts OK"
