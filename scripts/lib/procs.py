"""Child processes of the benchmark scripts: started in their own session, their stdout
event lines (JSON) read by a thread, waited on with a deadline, killed as a group."""

import json
import os
import queue
import signal
import subprocess
import threading
import time

STEP_TIMEOUT = 20.0


class Proc:
    """A child process whose stdout event lines are read by a thread."""

    def __init__(self, args, log):
        self.p = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=open(log, "wb"), start_new_session=True
        )
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass
        self.events.put(None)

    def wait_event(self, pred, what):
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"pid {self.p.pid}: no {what} within {STEP_TIMEOUT}s")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if e is None:
                raise RuntimeError(f"pid {self.p.pid}: stdout closed before {what}")
            if e.get("event") == "reload_failed":
                raise RuntimeError(f"reload failed: {e.get('reason')}")
            if pred(e):
                return e

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


def status_kib(pid, field):
    """A KiB field of /proc/PID/status (VmRSS, VmHWM, ...), 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def usage(pid):
    """(RSS in KiB, open fds) of a process."""
    return status_kib(pid, "VmRSS"), len(os.listdir(f"/proc/{pid}/fd"))
