"""CPU time from /proc: a server's own, and the whole machine's.

On a small machine the clients, the server and anything else running share the cores, so
requests per second alone cannot say whose cost it measured; CPU time can.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """CPU time (user + system, all threads, exited ones too) a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Split after the parenthesised command name, which may hold spaces; utime and stime are
    # fields 14 and 15 of the line, so 11 and 12 of the rest.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """CPU time all cores have spent not idle (steal included: it was not ours to use)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_SECOND


def isolate_aws_config(workdir: Path) -> None:
    """Keep the user's ~/.aws and AWS_* variables out of the clients' behaviour (and out of
    any worker process, which inherits this environment)."""
    missing = str(workdir / "no-aws-config")
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = missing
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        os.environ.pop(name, None)


def thread_seconds(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of each live thread of `pid`, by native thread id."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        seconds[int(task.name)] = (int(fields[11]) / _TICKS_PER_SECOND,
                                   int(fields[12]) / _TICKS_PER_SECOND)
    return seconds
