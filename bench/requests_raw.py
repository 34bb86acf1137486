"""Server CPU per simple request, measured with clients that cost next to nothing.

    python -m bench.requests_raw [--before TREE] [--seconds S] [--clients N] [--rounds R]

bench.requests drives the servers with boto3, which spends ~3.5 ms of CPU a call against the
server's ~0.3-0.9: on two shared cores the clients crowd out the server, and on a busy
machine its CPU per request swings with them. Here each client sends the same
botocore-signed DescribeAvailabilityZones bytes (signed afresh each round; SigV4 allows a
signed request to be sent again within 15 minutes) on one kept-alive socket and reads each
whole response before the next: some microseconds a call. snapferry, the floor and, with
--before, another source tree's snapferry are measured in turn, R rounds, each round in a
different order. The server's CPU per request comes from /proc as in bench.requests.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench import cpu, servers
from bench.load import CREDENTIALS, REGION
from bench.servers import Target

BODY = b"Action=DescribeAvailabilityZones&Version=2016-11-15"


def _option(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def signed_bytes(url: str) -> bytes:
    """The whole HTTP/1.1 request as boto3 would send it (the headers it signs), signed now."""
    request = AWSRequest(
        method="POST", url=url + "/", data=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(*CREDENTIALS), "ec2", REGION).add_auth(request)
    headers = {**dict(request.headers.items()), "Host": urlsplit(url).netloc,
               "Content-Length": str(len(BODY))}
    head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + BODY


def _read_response(sock: socket.socket, pending: bytes) -> tuple[int, bytes]:
    """(status, bytes already read past this response)."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(b":", 1)[1]) for line in lines[1:]
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    return status, rest[length:]


def client(url: str, payload: bytes, seconds: float) -> tuple[int, int]:
    """(answered 200, other answers) in `seconds` on one kept-alive connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ok = failed = 0
        pending = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.sendall(payload)
            status, pending = _read_response(sock, pending)
            if status == 200:
                ok += 1
            else:
                failed += 1
        return ok, failed


def measure(pool: multiprocessing.pool.Pool, target: Target, clients: int,
            seconds: float) -> tuple[float, float, int]:
    """(server CPU seconds per request, share of the machine others used, failures)."""
    payload = signed_bytes(target.url)
    pool.starmap(client, [(target.url, payload, 0.3)] * clients)  # warm-up
    server_before, machine_before = target.cpu_seconds(), cpu.machine_busy_seconds()
    started = time.monotonic()
    results = pool.starmap(client, [(target.url, payload, seconds)] * clients)
    elapsed = time.monotonic() - started
    server = target.cpu_seconds() - server_before
    busy = cpu.machine_busy_seconds() - machine_before
    answered = sum(ok + failed for ok, failed in results)
    # Ours: the server and the clients, which run flat out (about one core between them).
    foreign = max(busy - server - min(clients, 2) * elapsed * 0.5, 0.0)
    capacity = elapsed * len(os.sched_getaffinity(0))
    return server / max(answered, 1), foreign / capacity, sum(f for _, f in results)


def main(argv: list[str]) -> int:
    before = Path(argv[argv.index("--before") + 1]).resolve() if "--before" in argv else None
    seconds = float(_option(argv, "--seconds", "3"))
    clients = int(_option(argv, "--clients", "2"))
    rounds = int(_option(argv, "--rounds", "5"))
    print(f"date {time.strftime('%Y-%m-%d %H:%M %Z')}, load average "
          f"{os.getloadavg()[0]:.1f}; {clients} raw client(s), {seconds:g} s windows, "
          f"{rounds} rounds", flush=True)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="snapferry-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        targets = list(servers.start_targets(stack, workdir, before=before).values())
        pool = stack.enter_context(context.Pool(clients))
        cpu_per: dict[str, list[float]] = {target.name: [] for target in targets}
        for round_ in range(rounds):
            order = targets[round_ % len(targets):] + targets[: round_ % len(targets)]
            for target in order:
                per_request, foreign, failed = measure(pool, target, clients, seconds)
                cpu_per[target.name].append(per_request)
                print(f"  round {round_ + 1}  {target.name:<9}  server CPU "
                      f"{per_request * 1e6:5.0f} µs/req  (others ~{foreign:.0%} of the machine)"
                      + (f"  {failed} non-200" if failed else ""), flush=True)
    medians = {name: statistics.median(values) for name, values in cpu_per.items()}
    print()
    for name, values in cpu_per.items():
        print(f"{name:<9}  median {medians[name] * 1e6:5.0f} µs/req  "
              f"(range {min(values) * 1e6:.0f}-{max(values) * 1e6:.0f})")
    for name in medians:
        if name != "floor":
            print(f"{name}/floor: {medians[name] / medians['floor']:.2f}")
    if "before" in medians:
        print(f"snapferry/before: {medians['snapferry'] / medians['before']:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
