#!/usr/bin/env python3
"""Checks every panel of a Grafana dashboard against a real Prometheus (stdlib only).

For each panel target: Grafana's variables are substituted ($signer, $node and every other
dashboard variable -> `.*`, $__rate_interval -> --rate-interval, $__interval -> --step,
$__range -> the checked time span), the expression runs as a range query over that span
(/api/v1/query_range), and the panel passes when every target returns at least one series
with at least one non-NaN value and every label its legendFormat names ({{label}}) is on every
returned series. Panels on Substrate node metrics (substrate_*) are listed as not checked unless
--with-node. The dashboard's query variables (label_values(metric, label)) are checked the same
way, and with --rules the alert rules file's rules must all be loaded with health "ok".

Prints one line per check (`ok  <title>: ...` or `FAIL <title>: why`), then `N passed, M failed`;
exits 1 on any failure, 2 when Prometheus cannot be asked at all.

Run by docker/dashboard-check.sh against the demo's signers. Also usable against any Prometheus
that scrapes Exclave signers (and nodes), e.g. the compose demo's:
    python3 docker/dashboard_check.py --prometheus http://127.0.0.1:9090 --since 15m --with-node
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NODE_PANEL_NOTE = "not checked here (needs a Substrate node's Prometheus endpoint: the compose demo, docs/docker.md)"
NODE_METRIC = re.compile(r"\bsubstrate_\w+")
# Grafana variable syntaxes: ${var}, ${var:format}, $var, [[var]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$")


class PromError(Exception):
    pass


class Prometheus:
    def __init__(self, base, timeout=30):
        self.base = base.rstrip("/")
        self.timeout = timeout

    def get(self, path, params=None):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            # The API answers errors (bad expression, ...) with 4xx/5xx and a JSON body.
            try:
                body = json.load(e)
            except ValueError:
                raise PromError(f"HTTP {e.code} from {path}") from None
        except (urllib.error.URLError, OSError) as e:
            raise PromError(f"cannot reach {self.base}: {e}") from None
        if body.get("status") != "success":
            raise PromError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", s)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {s} (e.g. 90s, 15m)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def prom_duration(seconds):
    return f"{max(1, int(round(seconds)))}s"


def panels_of(dashboard):
    """Every panel that is not a row, in order, including those inside collapsed rows."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from (q for q in p.get("panels", []) if q.get("type") != "row")
        else:
            yield p


def substitute(expr, variables, builtins):
    """Grafana's variable substitution, as far as a check needs it; returns (expr, unknown names)."""
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return ".*"
        unknown.append(name)
        return m.group(0)

    return VARIABLE.sub(repl, expr), unknown


def is_number(v):
    try:
        return not math.isnan(float(v))
    except ValueError:
        return False


def check_target(prom, target, variables, builtins, start, end, step):
    """Returns (ok, series count, legend labels, all values zero, message)."""
    expr, unknown = substitute(target.get("expr", ""), variables, builtins)
    ref = target.get("refId", "?")
    if unknown:
        return False, 0, [], False, f"target {ref}: unknown variable(s) {', '.join('$' + u for u in unknown)}"
    legend = LEGEND_LABEL.findall(target.get("legendFormat", ""))
    try:
        data = prom.get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
    except PromError as e:
        return False, 0, legend, False, f"target {ref}: query failed: {e} (query: {expr})"
    series = data.get("result", [])
    with_values = [s for s in series if any(is_number(v) for _, v in s.get("values", []))]
    if not series:
        return False, 0, legend, False, f"target {ref}: no series (query: {expr})"
    if not with_values:
        return False, 0, legend, False, f"target {ref}: {len(series)} series, all values NaN (query: {expr})"
    for s in series:
        missing = [label for label in legend if label not in s.get("metric", {})]
        if missing:
            return (False, len(with_values), legend, False,
                    f"target {ref}: series {s.get('metric')} has no label {', '.join(missing)} "
                    f"(legend {target.get('legendFormat')!r})")
    zero = all(float(v) == 0 for s in with_values for _, v in s["values"] if is_number(v))
    return True, len(with_values), legend, zero, ""


def check_panel(prom, panel, variables, builtins, args):
    title = panel.get("title") or f"panel {panel.get('id')}"
    targets = [t for t in panel.get("targets", []) if t.get("expr") and not t.get("hide")]
    if not targets:
        return "skip", f"{title}: no Prometheus query"
    if not args.with_node and any(NODE_METRIC.search(t["expr"]) for t in targets):
        return "skip", f"{title}: {NODE_PANEL_NOTE}"
    total, labels, zero_refs, parts = 0, [], [], []
    for t in targets:
        ok, n, legend, zero, msg = check_target(prom, t, variables, builtins, args.start, args.end, args.step)
        if not ok:
            return "fail", f"{title}: {msg}"
        total += n
        parts.append(f"{t.get('refId', '?')} {n}")
        labels += [label for label in legend if label not in labels]
        if zero:
            zero_refs.append(t.get("refId", "?"))
    line = f"{title}: {total} series"
    if len(targets) > 1:
        line += f" ({', '.join(parts)})"
    line += f", labels {', '.join(labels) if labels else '-'}"
    if zero_refs:
        which = "" if len(zero_refs) == len(targets) else f" in {', '.join(zero_refs)}"
        line += f" (note: every value is 0{which})"
    return "ok", line


def check_variable(prom, var, args):
    name = var.get("name", "?")
    query = var.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    m = LABEL_VALUES.match(query or "")
    if not m:
        return "skip", f"variable {name}: not a label_values(metric, label) query, not checked"
    selector, label = m.groups()
    if not args.with_node and NODE_METRIC.search(selector):
        return "skip", f"variable {name}: {NODE_PANEL_NOTE}"
    try:
        series = prom.get("/api/v1/series", {"match[]": selector, "start": args.start, "end": args.end})
    except PromError as e:
        return "fail", f"variable {name}: {query}: {e}"
    values = sorted({s[label] for s in series if label in s})
    if not values:
        return "fail", f"variable {name}: {query} has no values"
    return "ok", f"variable {name}: {len(values)} values ({', '.join(values)})"


def rule_names(path):
    """Alert and recording rule names of a rules file (no YAML parser in the stdlib)."""
    names = []
    with open(path) as f:
        for line in f:
            m = re.match(r"^\s*(?:-\s+)?(alert|record):\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", line)
            if m:
                names.append(m.group(2))
    return names


def check_rules(prom, path, wait):
    expected = rule_names(path)
    if not expected:
        return "fail", f"alert rules: no rule found in {path}"
    deadline = time.monotonic() + wait
    while True:
        try:
            groups = prom.get("/api/v1/rules").get("groups", [])
        except PromError as e:
            return "fail", f"alert rules: {e}"
        loaded = {r["name"]: r for g in groups for r in g.get("rules", [])}
        missing = [n for n in expected if n not in loaded]
        bad = [n for n in expected if n in loaded and loaded[n].get("health") != "ok"]
        if not missing and not bad:
            break
        if time.monotonic() > deadline:
            if missing:
                return "fail", f"alert rules: not loaded: {', '.join(missing)} (is {path} in rule_files?)"
            why = "; ".join(f"{n}: health {loaded[n].get('health')} {loaded[n].get('lastError', '')}".strip() for n in bad)
            return "fail", f"alert rules: {why}"
        time.sleep(0.5)
    active = sorted({f"{r['name']} ({r.get('state')})" for r in loaded.values()
                     if r.get("type") == "alerting" and r.get("state") in ("pending", "firing")})
    line = f"alert rules: {len(expected)} rules of {path} loaded, all evaluated with health ok"
    line += f"; pending or firing now: {', '.join(active)}" if active else "; none pending or firing"
    return "ok", line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--dashboard", default="docker/grafana/dashboards/exclave.json")
    ap.add_argument("--start", type=float, help="unix seconds (default: --since before --end)")
    ap.add_argument("--end", type=float, help="unix seconds (default: now)")
    ap.add_argument("--since", type=parse_duration, default=parse_duration("15m"), help="span when --start is not given")
    ap.add_argument("--step", type=parse_duration, default=parse_duration("1s"))
    ap.add_argument("--rate-interval", default="5s", help="what $__rate_interval stands for")
    ap.add_argument("--rules", help="alert rules file whose rules must be loaded and healthy")
    ap.add_argument("--rules-wait", type=float, default=15, help="seconds to wait for every rule's first evaluation")
    ap.add_argument("--with-node", action="store_true", help="check the substrate_* panels too")
    args = ap.parse_args()
    args.end = args.end if args.end is not None else time.time()
    args.start = args.start if args.start is not None else args.end - args.since
    if args.start >= args.end:
        ap.error("--start must be before --end")

    with open(args.dashboard) as f:
        dashboard = json.load(f)
    prom = Prometheus(args.prometheus)
    try:
        prom.get("/api/v1/status/buildinfo")
    except PromError as e:
        print(f"dashboard check: {e}", file=sys.stderr)
        return 2

    span = args.end - args.start
    builtins = {
        "__rate_interval": args.rate_interval,
        "__interval": prom_duration(args.step),
        "__range": prom_duration(span),
        "__range_s": str(int(round(span))),
        "__range_ms": str(int(round(span * 1000))),
    }
    template_vars = dashboard.get("templating", {}).get("list", [])
    variables = {v["name"] for v in template_vars if "name" in v}
    print(f"dashboard {args.dashboard} ({dashboard.get('title', '?')}) against {args.prometheus}, "
          f"{time.strftime('%H:%M:%S', time.localtime(args.start))} to "
          f"{time.strftime('%H:%M:%S', time.localtime(args.end))} ({builtins['__range']}, step {builtins['__interval']}, "
          f"$__rate_interval {args.rate_interval})")

    results = [check_variable(prom, v, args) for v in template_vars if v.get("type") == "query"]
    results += [check_panel(prom, p, variables, builtins, args) for p in panels_of(dashboard)]
    if args.rules:
        results.append(check_rules(prom, args.rules, args.rules_wait))

    for status, line in results:
        print({"ok": "ok  ", "fail": "FAIL ", "skip": "--  "}[status] + line)
    passed = sum(status == "ok" for status, _ in results)
    failed = sum(status == "fail" for status, _ in results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
