#!/usr/bin/env python3
"""Times N reloads of an idle proxy and prints the samples as one JSON object.

    reload_times.py N refproxy-fd-pass  REFPROXY CONFIG CONTROL_SOCKET
    reload_times.py N refproxy-master   REFPROXY CONFIG
    reload_times.py N haproxy-master    HAPROXY CONFIG MASTER_SOCKET
    reload_times.py N haproxy-daemon    HAPROXY CONFIG PIDFILE STATS_SOCKET

Each sample is (trigger -> new process ready, trigger -> old process gone) in
ms. All times are CLOCK_MONOTONIC, which refproxy's `mono_ns` events share.
"Old process gone" is when a pidfd of the old process polls readable, i.e.
when the kernel reports the process exited. How "trigger" and "ready" are
taken, per mode:

- refproxy-fd-pass: trigger = just before spawning
  `refproxy --upgrade-from SOCK --mode fd-pass`; ready = `mono_ns` of the new
  process's `ready` event.
- refproxy-master: trigger = just before SIGUSR2 to the master; ready =
  `mono_ns` of the new worker's `ready` event (relayed by the master).
- haproxy-master (`haproxy -Ws -S SOCK`): trigger = just before SIGUSR2 to the
  master; ready = arrival of the master's systemd `READY=1` notification on a
  NOTIFY_SOCKET this script owns. HAProxy 2.6's master sends it after it
  forked the new worker and re-executed itself into its wait loop, so it is an
  upper bound: the new worker can answer requests a little earlier.
- haproxy-daemon (`haproxy -D -p PIDFILE -x STATS_SOCKET -sf OLDPID`): trigger
  = just before spawning the command; ready = the command returned (it forked
  the new process, with the listeners already bound, and wrote the pidfile).

This process makes itself a child subreaper, so daemonized processes stay its
children; every process it learned of is killed on every exit path.
"""

import ctypes
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT_S = 15.0
PR_SET_CHILD_SUBREAPER = 36

known_pids = set()


def now_ns():
    return time.monotonic_ns()


def log(msg):
    print(f"reload_times: {msg}", file=sys.stderr, flush=True)


class Events:
    """Reads JSON-lines events from a process's stdout on a thread."""

    def __init__(self, proc):
        self.q = queue.Queue()
        self.proc = proc
        t = threading.Thread(target=self._run, daemon=True)
        t.start()

    def _run(self):
        for line in self.proc.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def wait_all(self, preds):
        """Reads events until each predicate of `preds` (name -> predicate) has
        matched one, in any order (a master relays its workers' lines, so they
        may interleave with its own); returns name -> first matching event."""
        found = {}
        deadline = time.monotonic() + TIMEOUT_S
        while len(found) < len(preds):
            what = ", ".join(k for k in preds if k not in found)
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timeout waiting for {what}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                raise RuntimeError(f"timeout waiting for {what}") from None
            if ev is None:
                raise RuntimeError(f"event stream ended before {what} (exit {self.proc.wait()})")
            if ev.get("event") == "reload_failed":
                raise RuntimeError(f"reload failed: {ev}")
            for name, pred in preds.items():
                if name not in found and pred(ev):
                    found[name] = ev
        return found

    def wait_for(self, pred, what):
        return self.wait_all({what: pred})[what]


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    known_pids.add(p.pid)
    return p


def spawn_events(argv):
    p = spawn(argv, stdout=subprocess.PIPE, text=True)
    return p, Events(p)


def pidfd(pid):
    return os.pidfd_open(pid)


def wait_gone(fd, what):
    """Waits until the pidfd polls readable; returns the monotonic time then."""
    r, _, _ = select.select([fd], [], [], TIMEOUT_S)
    t = now_ns()
    os.close(fd)
    if not r:
        raise RuntimeError(f"timeout waiting for {what} to exit")
    return t


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        known_pids.discard(pid)


def refproxy_fd_pass(n, binary, config, ctl):
    cur, ev = spawn_events([binary, "--config", config])
    ev.wait_for(lambda e: e["event"] == "ready", "first ready")
    samples = []
    for _ in range(n):
        fd = pidfd(cur.pid)
        t0 = now_ns()
        new, nev = spawn_events(
            [binary, "--config", config, "--upgrade-from", ctl, "--mode", "fd-pass"]
        )
        ready = nev.wait_for(lambda e: e["event"] == "ready" and e["pid"] == new.pid, "ready")
        gone = wait_gone(fd, f"old refproxy {cur.pid}")
        cur.wait(timeout=TIMEOUT_S)
        known_pids.discard(cur.pid)
        samples.append(((ready["mono_ns"] - t0) / 1e6, (gone - t0) / 1e6))
        cur, ev = new, nev
    return samples


def refproxy_master(n, binary, config):
    master, ev = spawn_events([binary, "--config", config, "--master"])
    first = ev.wait_for(lambda e: e["event"] == "ready", "first ready")
    worker, gen = first["pid"], first["generation"]
    known_pids.add(worker)
    samples = []
    for _ in range(n):
        fd = pidfd(worker)
        t0 = now_ns()
        os.kill(master.pid, signal.SIGUSR2)
        want, old = gen + 1, worker
        got = ev.wait_all({
            "new worker ready": lambda e: e["event"] == "ready" and e["generation"] == want,
            "reload_done": lambda e: e["event"] == "reload_done" and e["generation"] == want,
            "old worker exited": lambda e: e["event"] == "exited" and e["pid"] == old,
        })
        ready = got["new worker ready"]
        known_pids.add(ready["pid"])
        gone = wait_gone(fd, f"old worker {worker}")
        known_pids.discard(worker)
        samples.append(((ready["mono_ns"] - t0) / 1e6, (gone - t0) / 1e6))
        worker, gen = ready["pid"], want
    return samples


def master_cli(sock_path, cmd):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(TIMEOUT_S)
                s.connect(sock_path)
                s.sendall(cmd.encode() + b"\n")
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        return out.decode()
                    out += b
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def haproxy_workers(sock_path):
    """Pids of the current-generation workers (`reloads` == 0) per `show proc`."""
    cur, old = [], []
    section = None
    for line in master_cli(sock_path, "show proc").splitlines():
        if line.startswith("#"):
            section = line
            continue
        f = line.split()
        if len(f) >= 3 and f[1] == "worker" and section and "workers" in section:
            (cur if f[2] == "0" else old).append(int(f[0]))
    return cur, old


def haproxy_master(n, binary, config, msock):
    tmp = tempfile.mkdtemp()
    npath = os.path.join(tmp, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(npath)

    def wait_ready(what):
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timeout waiting for READY=1 ({what})")
            r, _, _ = select.select([ns], [], [], left)
            if not r:
                continue
            msg = ns.recv(4096)
            t = now_ns()
            if b"READY=1" in msg.split(b"\n"):
                return t

    try:
        env = dict(os.environ, NOTIFY_SOCKET=npath)
        master = spawn([binary, "-Ws", "-f", config, "-S", msock], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready("start")
        samples = []
        for _ in range(n):
            # `show proc` answers from the master's loop: it is ready for signals again.
            cur, _ = haproxy_workers(msock)
            if len(cur) != 1:
                raise RuntimeError(f"expected one current worker, got {cur}")
            known_pids.update(cur)
            fd = pidfd(cur[0])
            t0 = now_ns()
            os.kill(master.pid, signal.SIGUSR2)
            ready = wait_ready("reload")
            gone = wait_gone(fd, f"old haproxy worker {cur[0]}")
            known_pids.discard(cur[0])
            new, _ = haproxy_workers(msock)
            if new == cur:
                raise RuntimeError("worker was not replaced")
            known_pids.update(new)
            samples.append(((ready - t0) / 1e6, (gone - t0) / 1e6))
        return samples
    finally:
        ns.close()
        os.unlink(npath)
        os.rmdir(tmp)


def read_pid(path):
    with open(path) as f:
        return int(f.read().split()[0])


def haproxy_daemon(n, binary, config, pidfile, ssock):
    base = [binary, "-D", "-f", config, "-p", pidfile]
    subprocess.run(base, check=True, timeout=TIMEOUT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reap()
    old = read_pid(pidfile)
    known_pids.add(old)
    samples = []
    for _ in range(n):
        fd = pidfd(old)
        t0 = now_ns()
        subprocess.run(base + ["-x", ssock, "-sf", str(old)], check=True, timeout=TIMEOUT_S,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready = now_ns()
        new = read_pid(pidfile)
        known_pids.add(new)
        if new == old:
            raise RuntimeError("pidfile still names the old process")
        gone = wait_gone(fd, f"old haproxy {old}")
        known_pids.discard(old)
        reap()
        samples.append(((ready - t0) / 1e6, (gone - t0) / 1e6))
        old = new
    return samples


def median(xs):
    s = sorted(xs)
    k = len(s)
    return s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2


def cleanup():
    for pid in list(known_pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while known_pids and time.monotonic() < deadline:
        for pid in list(known_pids):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                known_pids.discard(pid)
        reap()
        time.sleep(0.02)
    for pid in list(known_pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    n, mode, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    modes = {
        "refproxy-fd-pass": refproxy_fd_pass,
        "refproxy-master": refproxy_master,
        "haproxy-master": haproxy_master,
        "haproxy-daemon": haproxy_daemon,
    }
    if mode not in modes:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        samples = modes[mode](n, *args)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"{mode}: {e}")
        return 1
    finally:
        cleanup()
    out = {
        "mode": mode,
        "samples_ms": [[round(r, 3), round(g, 3)] for r, g in samples],
        "ready_ms_median": round(median([r for r, _ in samples]), 3),
        "gone_ms_median": round(median([g for _, g in samples]), 3),
        "ready_ms_max": round(max(r for r, _ in samples), 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
