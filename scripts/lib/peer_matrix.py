"""Renders docs/peers.md from the peer matrix's runs (scripts/peer-matrix).

    python3 scripts/lib/peer_matrix.py --runs runs/peers --out docs/peers.md \
        [--readme README.md] SERVER...

Reads RUNS/<server>/results.json (and RUNS/<server>.wall_s, the run's wall
time written by scripts/peer-matrix) for each server given, in that order,
and writes one markdown page: the environment and dates, a summary table
(failed per 100k requests per replacement, without and with keep-alive),
the full matrix (server x replacement x keep-alive -> actions, failed per
100k, failed per reload, main failure classes, observed reload phases,
expectations), the servers that could not be installed here, and per
server the run's wall time and a "what this means" paragraph.

The paragraphs are written by hand from the numbers: whatever stands
between `<!-- notes:SERVER -->` and `<!-- /notes:SERVER -->` in the page
being replaced is kept; a server without one gets a marked placeholder.
A server without a run is listed as not run. With --readme, the summary
table is also written between `<!-- peer-summary -->` and
`<!-- /peer-summary -->` in that file.
"""

import argparse
import json
import os
import re
import statistics
import sys

# Display names, in the order.
NAMES = {
    "haproxy": "HAProxy",
    "nginx": "nginx",
    "caddy": "Caddy",
    "apache2": "Apache httpd (event MPM)",
    "nghttpx": "nghttpx",
    "lighttpd": "lighttpd",
    "h2o": "h2o",
    "gunicorn": "gunicorn",
    "pm2": "Node.js cluster under PM2",
    "refproxy": "refproxy",
}

# What is behind each server (the issue asks to say where the server is the app).
BEHIND = {
    "gunicorn": "the app itself (scenarios/peers/wsgi_app.py)",
    "pm2": "the app itself (scenarios/peers/pm2_app.js)",
}

# Servers of the list that cannot be installed from the registries
# this machine reaches (Debian, PyPI, npm, crates.io).
NOT_INSTALLABLE = [
    ("Envoy", "no Debian 12 package (the PyPI package `envoy` is an unrelated subprocess library); Envoy ships prebuilt binaries and container images, which this machine cannot fetch"),
    ("Traefik", "no Debian 12 package (the PyPI package `traefik` is a client of its API, not the server); Traefik ships prebuilt binaries and container images, which this machine cannot fetch"),
    ("Pingora", "a Rust library on crates.io with no server binary of its own: measuring it means writing a proxy on it, not installing a peer as its users would"),
]

NOTES_RE = re.compile(r"<!-- notes:(\w+) -->\n(.*?)<!-- /notes:\1 -->", re.S)
PLACEHOLDER = "_(to be written from the numbers above)_\n"

CLASS_WORDS = {
    "connect_refused": "refused",
    "connect_timeout": "connect timeout",
    "connect_error": "connect error",
    "reset": "reset",
    "closed": "closed",
    "truncated": "truncated",
    "timeout": "timeout",
    "write_error": "write error",
    "bad_response": "bad response",
    "http_5xx": "5xx",
    "http_other": "other status",
    "client_error": "client error",
}


def thousands(n):
    return f"{n:,}"


def load_run(runs, server):
    path = os.path.join(runs, server, "results.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        report = json.load(f)
    wall = None
    wall_path = os.path.join(runs, f"{server}.wall_s")
    if os.path.exists(wall_path):
        with open(wall_path) as f:
            wall = int(f.read().strip() or 0)
    return {"report": report, "wall_s": wall}


def replacements(case):
    """The restarts and reloads of a case (not sysctl or other actions)."""
    return [a for a in case["actions"] if a["kind"] in ("restart", "reload", "kill")]


def median_ms(actions, field):
    """Median of an observed phase in ms after the trigger, and how many actions showed it."""
    vals = []
    for a in actions:
        o = a.get("observed")
        if o and o.get(field) is not None:
            vals.append((o[field] - a["trigger_ns"]) / 1e6)
    if not vals:
        return None, 0
    return statistics.median(vals), len(vals)


def phases(actions):
    """`new listening / old stopped accepting / old exited`, medians in ms."""
    n = len(actions)
    parts = []
    for field in ("new_listening_ns", "old_stopped_accepting_ns", "old_exited_ns"):
        m, seen = median_ms(actions, field)
        if m is None:
            parts.append("–")
        else:
            mark = "" if seen == n else f" ({seen}/{n})"
            parts.append(f"{m:.0f}{mark}")
    return " / ".join(parts)


def classes(load):
    cs = sorted(load["classes"], key=lambda c: -c["count"])
    if not cs:
        return "–"
    shown = [f"{CLASS_WORDS.get(c['class'], c['class'])} {thousands(c['count'])}" for c in cs[:3]]
    return ", ".join(shown)


def case_row(case):
    load = case["load"]
    acts = replacements(case)
    done = load["ok"] + load["failed"]
    per_100k = load["failed"] * 100_000 / done if done else 0.0
    per_reload = load["failed"] / len(acts) if acts else None
    # Failures the harness attributed to the actions (in their windows);
    # the rest happened away from any restart or reload.
    attributed = sum(f["count"] for a in acts for f in a["failures"])
    failed_acts = sum(1 for a in acts if not a["ok"])
    exp = case["expectations"]
    if case.get("error"):
        verdict = f"error: {case['error']}"
    elif exp:
        held = all(e["passed"] for e in exp)
        verdict = ("held: " if held else "**failed**: ") + ", ".join(
            e["expr"] + ("" if e["passed"] else f" (was {e['actual']:g})" if e["actual"] is not None else " (not measured)")
            for e in exp
        )
    else:
        verdict = "–"
    return {
        "replacement": re.sub(r", keep-alive$", "", case["name"]),
        "keep_alive": load["config"]["keep_alive"],
        "actions": f"{len(acts)}" + (f" ({failed_acts} failed)" if failed_acts else ""),
        "failed": load["failed"],
        "per_100k": per_100k,
        "per_reload": per_reload,
        "attributed": attributed,
        "failed_total": load["failed"],
        "classes": classes(load),
        "phases": phases(acts),
        "verdict": verdict,
        "seconds": load["elapsed_ns"] / 1e9,
    }


def fmt_per_100k(x):
    return "0" if x == 0 else (f"{x:,.0f}" if x >= 10 else f"{x:.1f}")


def fmt_per_reload(x):
    if x is None:
        return "–"
    return "0" if x == 0 else (f"{x:,.0f}" if x >= 10 else f"{x:.1f}")


def environment(runs_by_server):
    """Environment lines common to the runs, and every version seen."""
    envs = [r["report"]["environment"] for r in runs_by_server.values()]
    dates = sorted(r["report"]["started_at"] for r in runs_by_server.values())
    first = envs[0]
    versions = {}
    for e in envs:
        for k, v in e["versions"].items():
            versions[k] = v.splitlines()[0] if v else v
    shas = sorted({e.get("git_sha") or "?" for e in envs})
    lines = [
        f"- runs started {dates[0]} to {dates[-1]}",
        f"- {first['kernel']}, {first['cpus']} CPUs, host `{first['hostname']}`, open files limit {first['fd_limit']}",
        "- sysctls: " + ", ".join(f"`{k}={v}`" for k, v in sorted(first["sysctls"].items())),
        "- debug build of reloadbench, refproxy and loadgen; the git HEAD at the runs' starts: "
        + ", ".join(f"`{s[:12]}`" for s in shas)
        + "; every case in its own network namespace",
        "- versions: " + "; ".join(f"{k}: `{v}`" for k, v in sorted(versions.items())),
    ]
    return "\n".join(lines)


SUMMARY_RE = re.compile(r"(<!-- peer-summary -->\n).*?(<!-- /peer-summary -->)", re.S)


def summary_table(servers, rows):
    """Failed per 100k per replacement, without / with keep-alive."""
    out = ["| server | replacement | no keep-alive | keep-alive |", "|---|---|---:|---:|"]
    for s in servers:
        if s not in rows:
            out.append(f"| {NAMES.get(s, s)} | not run | | |")
            continue
        by = {}
        order = []
        for r in rows[s]:
            if r["replacement"] not in by:
                order.append(r["replacement"])
                by[r["replacement"]] = {}
            by[r["replacement"]][r["keep_alive"]] = r
        for i, rep in enumerate(order):
            cell = lambda ka: fmt_per_100k(by[rep][ka]["per_100k"]) if ka in by[rep] else "–"
            name = NAMES.get(s, s) if i == 0 else ""
            out.append(f"| {name} | {rep} | {cell(False)} | {cell(True)} |")
    for name, _ in NOT_INSTALLABLE:
        out.append(f"| {name} | not measured: cannot be installed here | | |")
    return "\n".join(out) + "\n"


def rows_of(runs_dir, servers):
    rows = {}
    for s in servers:
        r = load_run(runs_dir, s)
        if r is not None:
            rows[s] = [case_row(c) for c in r["report"]["cases"]]
    return rows


def render(runs_dir, servers, old_text):
    notes = {m.group(1): m.group(2) for m in NOTES_RE.finditer(old_text or "")}
    runs = {}
    for s in servers:
        r = load_run(runs_dir, s)
        if r is not None:
            runs[s] = r
    rows = {s: [case_row(c) for c in r["report"]["cases"]] for s, r in runs.items()}

    out = []
    out.append("# The peer matrix: real servers reloaded under load\n")
    out.append(
        "Written by `scripts/peer-matrix` from the runs of `scenarios/peers/<server>.toml`; "
        "the \"what this means\" paragraphs are written by hand from these numbers. Every "
        "scenario runs the same load: c=100 clients, 100,000 requests of a 32,987-byte page, "
        "without and with keep-alive, and 10 restarts or reloads per case (after 8,000, "
        "17,000, ... 89,000 completed requests), with reloadbench's built-in origin behind the "
        "server except where the server is the app (gunicorn, PM2). gunicorn's restart cases and "
        "PM2's keep-alive cases run 300,000 requests, so that all 10 of their slower actions "
        "fall within the load (a restart's refused connects count as requests). Each scenario's "
        "expectations (controls that must lose requests, modes that must not) make "
        "`reloadbench run scenarios/peers/<server>.toml` a regression test of that server's "
        "reload. Rerun one server with `scripts/peer-matrix SERVER`.\n"
    )
    out.append("## Environment\n")
    if runs:
        out.append(environment(runs) + "\n")
        out.append(
            "The machine was shared with other builds and benchmarks while these ran (2 cores): "
            "the absolute rates and times are those of a busy machine; the failure counts are "
            "what a client saw.\n"
        )
    else:
        out.append("No runs yet.\n")

    out.append("## Summary\n")
    out.append("Failed requests per 100,000, without / with keep-alive (0 = none lost):\n")
    out.append(summary_table(servers, rows))
    out.append("## The matrix\n")
    out.append(
        "Failed per reload = failed requests / restarts or reloads in the case; \"in the actions' "
        "windows\" = the failures the harness attributed to a restart or reload (from its trigger "
        "until the load recovered), the rest happened away from any. Reload phases "
        "are the medians over the case's actions, in ms after the trigger, as the kernel showed "
        "them for the processes that own the listening socket: new listening / old stopped "
        "accepting / old exited (\"–\": never observed, e.g. a server that keeps its socket and "
        "its process; \"(k/n)\": seen in k of n actions). A case's own report (report.md in its "
        "run directory) has every action's phases.\n"
    )
    out.append(
        "| server | replacement | keep-alive | actions | failed per 100k | failed per reload "
        "| of them in the actions' windows | main failure classes | phases ms: new listening / old stopped accepting / old exited "
        "| expectations | load s |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---|---|---|---:|")
    for s in servers:
        if s not in rows:
            out.append(f"| {NAMES.get(s, s)} | not run | | | | | | | | | |")
            continue
        for i, r in enumerate(rows[s]):
            name = NAMES.get(s, s) if i == 0 else ""
            out.append(
                f"| {name} | {r['replacement']} | {'yes' if r['keep_alive'] else 'no'} "
                f"| {r['actions']} | {fmt_per_100k(r['per_100k'])} | {fmt_per_reload(r['per_reload'])} "
                f"| {thousands(r['attributed'])} of {thousands(r['failed_total'])} | {r['classes']} | {r['phases']} | {r['verdict']} | {r['seconds']:.1f} |"
            )
    for name, why in NOT_INSTALLABLE:
        out.append(f"| {name} | not measured: {why} | | | | | | | | | |")
    out.append("")
    out.append(f"<!-- notes:matrix -->\n{notes.get('matrix', PLACEHOLDER)}<!-- /notes:matrix -->\n")

    out.append("## Per server\n")
    total = 0
    for s in servers:
        out.append(f"### {NAMES.get(s, s)}\n")
        if s in runs:
            r = runs[s]
            wall = r["wall_s"]
            if wall is not None:
                total += wall
            behind = BEHIND.get(s, "reloadbench's built-in origin")
            cases = len(r["report"]["cases"])
            out.append(
                f"`scenarios/peers/{s}.toml`: {cases} cases, behind it {behind}; the run took "
                + (f"{wall} s" if wall is not None else "an unrecorded time")
                + f" (started {r['report']['started_at']}).\n"
            )
        else:
            out.append(f"`scenarios/peers/{s}.toml` has not been run.\n")
        out.append(f"<!-- notes:{s} -->\n{notes.get(s, PLACEHOLDER)}<!-- /notes:{s} -->\n")
    out.append("## Time\n")
    out.append(
        f"The runs above took {total} s ({total / 60:.0f} min) of wall time in all, one server "
        "at a time, plus the peers' installation on a first run.\n"
    )
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--readme", help="also write the summary table into this file's peer-summary block")
    ap.add_argument("servers", nargs="+")
    args = ap.parse_args()
    old = ""
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = f.read()
    text = render(args.runs, args.servers, old)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"peer-matrix: wrote {args.out}", file=sys.stderr)
    if args.readme:
        with open(args.readme) as f:
            readme = f.read()
        table = summary_table(args.servers, rows_of(args.runs, args.servers))
        new, n = SUMMARY_RE.subn(lambda m: m.group(1) + table + m.group(2), readme)
        if n != 1:
            sys.exit(f"peer-matrix: {args.readme} has no <!-- peer-summary --> block")
        with open(args.readme, "w") as f:
            f.write(new)
        print(f"peer-matrix: updated the summary in {args.readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
