"""Soak of refproxy's lossless reloads: N fd-pass and N master-worker reloads under load.

For each mode (fd-pass, master-worker) and each keep-alive setting, it starts the built-in
origin and refproxy (release binaries), puts loadgen on it (closed loop, -c C), performs
N reloads one after the other, each waited for on refproxy's own events (the new
generation's `ready`, the old one's `reload_done` or the master's, then the old
generation's exit), then stops the load
with SIGINT and reads loadgen's JSON. It prints failed requests, reloads per second, and
the RSS and open fds of the serving process (and of the master) after the first reload
and after the last one, so that growth shows. Every process is started here, killed here,
and bounded in time. Exit 0 when every case lost nothing and no reload failed.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from procs import STEP_TIMEOUT, Proc, usage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")


def soak(mode, keep_alive, reloads, concurrency, tmp):
    tag = f"{mode}-{'ka' if keep_alive else 'close'}"
    origin = Proc([os.path.join(BIN, "reloadbench"), "origin", "--body-bytes", "1024"],
                  os.path.join(tmp, f"{tag}-origin.log"))
    procs = [origin]
    try:
        o = origin.wait_event(lambda e: e.get("event") == "ready", "origin ready")
        ctl = os.path.join(tmp, f"{tag}.sock")
        cfg = os.path.join(tmp, f"{tag}.toml")
        with open(cfg, "w") as f:
            f.write(f'listen = ["127.0.0.1:0"]\norigins = ["{o["addrs"][0]}"]\n'
                    f'control_socket = "{ctl}"\n')
        refproxy = os.path.join(BIN, "refproxy")
        first = [refproxy, "--config", cfg] + (["--master"] if mode == "master-worker" else [])
        cur = Proc(first, os.path.join(tmp, f"{tag}-gen1.log"))
        procs.append(cur)
        ready = cur.wait_event(lambda e: e.get("event") == "ready", "ready")
        addr, serving = ready["addrs"][0], ready["pid"]
        out = os.path.join(tmp, f"{tag}-load.json")
        lg = [os.path.join(BIN, "loadgen"), "-q", "-c", str(concurrency), "-t", "3600",
              "--json", out] + (["-k"] if keep_alive else []) + [f"http://{addr}/"]
        load = subprocess.Popen(lg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(0.5)  # warm-up load before the first reload (not a synchronisation)
        first_use = last_use = None
        master_first = master_last = None
        started = time.monotonic()
        for i in range(reloads):
            generation = i + 2
            if mode == "fd-pass":
                new = Proc([refproxy, "--config", cfg, "--upgrade-from", ctl, "--mode", "fd-pass"],
                           os.path.join(tmp, f"{tag}-new.log"))
                procs.append(new)
                r = new.wait_event(lambda e: e.get("event") == "ready", "ready")
                cur.wait_event(lambda e: e.get("event") == "reload_done", "reload_done")
                old, cur = cur, new
                old.p.wait(timeout=STEP_TIMEOUT)
                procs.remove(old)
                serving = r["pid"]
            else:
                os.kill(cur.p.pid, signal.SIGUSR2)
                d = cur.wait_event(lambda e: e.get("event") == "reload_done", "reload_done")
                old_worker, serving = serving, d["new_pid"]
                cur.wait_event(lambda e: e.get("event") == "exited" and e["pid"] == old_worker,
                               "the old worker's exit")
            assert (r if mode == "fd-pass" else d)["generation"] == generation
            if i == 0:
                first_use = usage(serving)
                if mode == "master-worker":
                    master_first = usage(cur.p.pid)
        took = time.monotonic() - started
        last_use = usage(serving)
        if mode == "master-worker":
            master_last = usage(cur.p.pid)
        load.send_signal(signal.SIGINT)
        load.wait(timeout=60)
        with open(out) as f:
            rep = json.load(f)
        ok, failed = rep["ok"], rep["failed"]
        line = (f"{mode:14} keep-alive={'yes' if keep_alive else 'no ':3} reloads={reloads} "
                f"in {took:6.1f} s ({reloads / took:5.1f}/s)  requests ok={ok} failed={failed}  "
                f"serving process RSS {first_use[0]} -> {last_use[0]} KiB, "
                f"fds {first_use[1]} -> {last_use[1]}")
        if master_first:
            line += (f"  master RSS {master_first[0]} -> {master_last[0]} KiB, "
                     f"fds {master_first[1]} -> {master_last[1]}")
        print(line, flush=True)
        return failed == 0
    finally:
        for p in procs:
            p.kill()
        if "load" in locals() and load.poll() is None:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()


def main():
    reloads = int(os.environ.get("SOAK_RELOADS", "1000"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "100"))
    good = True
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        for mode in ("fd-pass", "master-worker"):
            for keep_alive in (False, True):
                try:
                    good &= soak(mode, keep_alive, reloads, concurrency, tmp)
                except Exception as e:  # report and go on with the next case
                    print(f"{mode} keep-alive={keep_alive}: FAILED: {e}", flush=True)
                    good = False
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
