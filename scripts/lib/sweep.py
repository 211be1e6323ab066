"""Connections sweep of scripts/bench-loadgen: loadgen and wrk side by side at many
keep-alive connections against the built-in origin (1 KiB body), then loadgen through
refproxy at the same count.

For each count it starts a fresh origin, runs ROUNDS alternating rounds of loadgen and
wrk (SECONDS each), and reads each tool's requests, peak RSS and CPU time from
/usr/bin/time; then the origin's peak RSS (VmHWM); then a fresh refproxy in front of a fresh
origin with one loadgen run, and refproxy's peak RSS. A count is skipped, with the
reason, where the hard open-file limit cannot hold it (loadgen needs the connections
plus its reserve, refproxy two descriptors per connection), and a count that fails is a
row saying why; wrk is skipped where one
source address has too few ports (wrk cannot spread its source addresses). Every
process is started here, killed here, and bounded in time.

usage: sweep.py LOADGEN RELOADBENCH REFPROXY SECONDS ROUNDS COUNT...
"""

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

from procs import Proc, status_kib

LOADGEN_RESERVE = 256  # loadgen's limits::FD_RESERVE
WRK_RESERVE = 64
PROXY_RESERVE = 512


def port_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = map(int, f.read().split())
    return high - low + 1


def kill_group(pid):
    try:
        os.killpg(pid, 9)
    except ProcessLookupError:
        pass


def measured(args, timeout, tmp):
    """Runs args to the end under /usr/bin/time; returns (output, peak RSS KiB, CPU
    seconds) of that command alone (wait4's rusage of a child of this script would
    start from this script's own peak RSS: fork copies it)."""
    stats = os.path.join(tmp, "time.txt")
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", stats] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        p.communicate()
        raise RuntimeError(f"{args[0]} did not end within {timeout}s")
    text = out.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}:\n{text[-2000:]}")
    with open(stats) as f:
        rss, user, system = f.read().split()[-3:]
    return text, int(rss), float(user) + float(system)


def loadgen_run(loadgen, url, c, seconds, sources, tmp):
    args = [loadgen, "-q", "-k", "-c", str(c), "-t", str(seconds), "-n", "1000000000"]
    if sources > 1:
        args += ["--source-ips", str(sources)]
    out, rss, cpu = measured(args + [url], seconds + 60, tmp)
    n = int(re.search(r"^Complete requests:\s+(\d+)", out, re.M).group(1))
    failed = int(re.search(r"^Failed requests:\s+(\d+)", out, re.M).group(1))
    secs = float(re.search(r"^Time taken for tests:\s+([\d.]+)", out, re.M).group(1))
    return {"rps": n / secs, "rss": rss, "cpu_us": cpu / max(n, 1) * 1e6, "failed": failed}


def wrk_run(url, c, seconds, tmp):
    out, rss, cpu = measured(["wrk", "-t", "2", "-c", str(c), "-d", f"{seconds}s", url],
                             seconds + 60, tmp)
    n = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))
    secs = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = sum(map(int, errors.groups())) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed += int(non2xx.group(1)) if non2xx else 0
    return {"rps": n / secs, "rss": rss, "cpu_us": cpu / max(n, 1) * 1e6, "failed": failed}


def start_origin(reloadbench, tmp, tag, procs):
    """Starts an origin, listed in procs before it is waited for (killed on every path)."""
    o = Proc([reloadbench, "origin", "--body-bytes", "1024"], os.path.join(tmp, f"{tag}.log"))
    procs.append(o)
    ready = o.wait_event(lambda e: e.get("event") == "ready", "origin ready")
    return o, ready["addrs"][0]


def start_refproxy(refproxy, origin_addr, tmp, tag, procs):
    """Starts refproxy, listed in procs before it is waited for."""
    cfg = os.path.join(tmp, f"{tag}.toml")
    with open(cfg, "w") as f:
        f.write(f'listen = ["127.0.0.1:0"]\norigins = ["{origin_addr}"]\n')
    p = Proc([refproxy, "--config", cfg], os.path.join(tmp, f"{tag}.log"))
    procs.append(p)
    ready = p.wait_event(lambda e: e.get("event") == "ready", "refproxy ready")
    return ready["addrs"][0], ready["pid"]


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def point(args, c, tmp, hard, ports):
    """One count: a row of the table, or the reason it is skipped."""
    loadgen, reloadbench, refproxy, seconds, rounds = args
    if c + LOADGEN_RESERVE > hard:
        return f"skipped: loadgen needs {c + LOADGEN_RESERVE} open files, the hard limit is {hard}"
    sources = -(-c // ports)
    row = {"c": c}
    procs = []
    try:
        origin, addr = start_origin(reloadbench, tmp, f"origin-{c}", procs)
        url = f"http://{addr}/"
        lg, wk = [], []
        wrk_ok = sources == 1 and c + WRK_RESERVE <= hard
        for _ in range(rounds):
            lg.append(loadgen_run(loadgen, url, c, seconds, sources, tmp))
            if wrk_ok:
                wk.append(wrk_run(url, c, seconds, tmp))
        row["loadgen"] = {k: median(lg, k) for k in ("rps", "rss", "cpu_us")}
        row["loadgen"]["failed"] = sum(r["failed"] for r in lg)
        if wk:
            row["wrk"] = {k: median(wk, k) for k in ("rps", "rss", "cpu_us")}
            row["wrk"]["failed"] = sum(r["failed"] for r in wk)
        row["origin_rss"] = status_kib(origin.p.pid, "VmHWM")
        origin.kill()
        procs.remove(origin)
        if 2 * c + PROXY_RESERVE <= hard:
            origin, addr = start_origin(reloadbench, tmp, f"proxy-origin-{c}", procs)
            paddr, serving = start_refproxy(refproxy, addr, tmp, f"refproxy-{c}", procs)
            via = loadgen_run(loadgen, f"http://{paddr}/", c, seconds, sources, tmp)
            row["proxy"] = {"rps": via["rps"], "failed": via["failed"],
                            "rss": status_kib(serving, "VmHWM"),
                            "origin_rss": status_kib(origin.p.pid, "VmHWM")}
        else:
            row["proxy"] = f"needs {2 * c + PROXY_RESERVE} open files"
    finally:
        for p in procs:
            p.kill()
    return row


def mb(kib):
    return f"{kib / 1024:.0f} MB"


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    loadgen, reloadbench, refproxy = sys.argv[1:4]
    seconds, rounds = int(sys.argv[4]), int(sys.argv[5])
    counts = [int(c) for c in sys.argv[6:]]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ports = port_range()
    print(f"\nconnections sweep: keep-alive, 1 KiB body from the built-in origin, {seconds}s "
          f"per run, median of {rounds} rounds; open-file limit {hard}, {ports} ports per "
          f"source address")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in counts:
            try:
                r = point((loadgen, reloadbench, refproxy, seconds, rounds), c, tmp, hard, ports)
            except Exception as e:  # one count that fails is a row saying why
                r = f"failed: {(str(e).splitlines() or [type(e).__name__])[0]}"
            rows.append((c, r))
            print(f"  {c} connections: done" if isinstance(r, dict) else f"  {c}: {r}",
                  flush=True)
    print("\n| connections | loadgen req/s | wrk req/s | req/s ratio | loadgen max RSS "
          "| wrk max RSS | RSS ratio | loadgen CPU µs/req | wrk CPU µs/req | failed "
          "(loadgen, wrk) | origin max RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for c, r in rows:
        if not isinstance(r, dict):
            print(f"| {c:,} | {r} |")
            continue
        lg, wk = r["loadgen"], r.get("wrk")
        if wk and wk["rps"] > 0:
            print(f"| {c:,} | {lg['rps']:,.0f} | {wk['rps']:,.0f} | {lg['rps'] / wk['rps']:.2f}x "
                  f"| {mb(lg['rss'])} | {mb(wk['rss'])} | {lg['rss'] / wk['rss']:.2f}x "
                  f"| {lg['cpu_us']:.1f} | {wk['cpu_us']:.1f} | {lg['failed']}, {wk['failed']} "
                  f"| {mb(r['origin_rss'])} |")
        else:
            why = "wrk: no request" if wk else "wrk: one source address is short of ports"
            print(f"| {c:,} | {lg['rps']:,.0f} | ({why}) | | {mb(lg['rss'])} "
                  f"| | | {lg['cpu_us']:.1f} | | {lg['failed']} | {mb(r['origin_rss'])} |")
    print("\n| connections | through refproxy: loadgen req/s | failed | refproxy max RSS "
          "| origin max RSS |")
    print("|---:|---:|---:|---:|---:|")
    for c, r in rows:
        if isinstance(r, dict) and isinstance(r["proxy"], dict):
            p = r["proxy"]
            print(f"| {c:,} | {p['rps']:,.0f} | {p['failed']} | {mb(p['rss'])} "
                  f"| {mb(p['origin_rss'])} |")
        else:
            why = r["proxy"] if isinstance(r, dict) else r
            print(f"| {c:,} | skipped: {why} | | | |")


if __name__ == "__main__":
    main()
