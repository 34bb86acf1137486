"""Where PostgreSQL's time goes (issue 14): DescribeTags with 200 ids and the create rate, on
a real `snapferry serve` over a durable PostgreSQL 15 of its own (BENCHMARKS.md, "PostgreSQL
profiles, session 23").

    python -m bench.profile_pg [--count 100000] [--repeat 30] [--creates 200] [--rounds 2]
                               [--phases tags,creates] [--before TREE] [--spy DIR]
                               [--explain] [--variants N] [--after-seed vacuum|analyze]

A cluster (snapferry.localengines, durable: fsync on, as the bench's) is started with
pg_stat_statements and auto_explain loaded and the WAL's I/O timed. With `creates` among the
phases, the create rate is first taken on the empty store (a cold server: its first calls
load botocore's endpoint data). Then `count` tagged snapshots are seeded (bench/scale_metadata
.py's Seeder), followed by `VACUUM ANALYZE` + `CHECKPOINT` (the bench's Seeder.analyze) or,
`--after-seed analyze`, ANALYZE alone (what the bench did before session 22's second run).
`--before TREE`: a second server running another source tree's snapferry package over the
same store and data dir; each round runs every phase on each server in turn, so load on a
shared machine hits both alike. `rounds` times, each phase with the counters read around it:

  tags boto3   DescribeTags with 200 ids through boto3 (the bench's call), wall ms a call and
               the client's CPU
  tags raw     the same signed request over one kept-alive HTTP connection, the answer read
               but not parsed: the server's part (and the loopback transfer)
  tags parse   botocore parsing that answer, CPU ms: the client's part
  creates      StartSnapshot + CompleteSnapshot from 4 threads (the bench's), pairs a second
               and the clients' CPU a pair

For each phase, per call: the server process's CPU (/proc, all threads), the PostgreSQL
backends' on-CPU time (schedstat) and the cluster's background processes' (WAL writer,
checkpointer, autovacuum), the statements PostgreSQL ran (pg_stat_statements: each is one
round trip, BEGIN/COMMIT/ROLLBACK included; the pool's pre-ping, an empty statement, is not
counted there but is one more round trip per pool checkout), their execution and planning
time, commits, WAL bytes, WAL flushes (fsyncs) and their time (pg_stat_wal with
track_wal_io_timing). `--spy DIR`: py-spy (`--idle`, so waits on PostgreSQL show) on the
server during each phase, the request threads summarised (it inflates the CPU figures: read
its shares). `--explain`: EXPLAIN (ANALYZE, BUFFERS) of DescribeTags' statement as sent, custom
and generic plan, and an empty statement's round trip. `--variants N`: the statement in other
shapes, N times each, alternating, with the backend's on-CPU time.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import psycopg
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from sqlalchemy import select

from bench import cpu, pyspy
from bench.describe_tags_parts import body_for
from bench.profile_server import read_raw, summarise
from bench.scale_metadata import ACCOUNT, REGION, Seeder, client, create_snapshots
from snapferry.localengines import PG_USER, LocalPostgres
from snapferry.services.ec2.tags import tags_query
from snapferry.storage.metadata import open_engine, snapshots
from snapferry.testing import ServerProcess

IDS = 200
SETTINGS = {
    "pg_stat_statements.track_planning": "on",
    "track_io_timing": "on",
    "track_wal_io_timing": "on",
    "auto_explain.log_min_duration": "-1",  # off until --explain turns it on for a window
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
}


# ---- the cluster and its counters ----------------------------------------------------------

def start_postgres() -> tuple[LocalPostgres, str]:
    postgres = LocalPostgres().start()
    # The libraries first: their settings are unknown to ALTER SYSTEM until they are loaded.
    with admin(postgres, "postgres") as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = "
                     "'pg_stat_statements', 'auto_explain'")
    postgres.restart()
    with admin(postgres, "postgres") as conn:
        for name, value in SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        conn.execute("SELECT pg_reload_conf()")
    url = postgres.create_database("bench")
    with admin(postgres, "bench") as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    return postgres, url


@contextmanager
def admin(postgres: LocalPostgres, dbname: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=PG_USER, dbname=dbname,
                         autocommit=True) as conn:
        yield conn


def postgres_processes(postgres: LocalPostgres) -> dict[int, str]:
    """pid -> role of the postmaster's children: `backend` for the server's connections,
    else the process's own title (walwriter, checkpointer, autovacuum worker...)."""
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) != postmaster:
            continue
        role = title.removeprefix("postgres: ")
        found[int(entry.name)] = "backend" if " bench " in f" {role} " else role.split(" ")[0]
    return found


@dataclass
class Counters:
    statements: dict[str, tuple[int, float, float, int]]  # query -> calls, exec ms, plan ms, plans
    commits: int
    rollbacks: int
    wal: tuple[int, int, int, float, float]  # records, bytes, syncs, write ms, sync ms
    server_cpu: float
    pg_cpu: dict[str, float] = field(default_factory=dict)  # role -> CPU seconds
    wall: float = 0.0


def read_counters(postgres: LocalPostgres, server_pid: int) -> Counters:
    pg_cpu: dict[str, float] = collections.defaultdict(float)
    for pid, role in postgres_processes(postgres).items():
        with suppress(OSError):  # single-threaded processes: schedstat's ns, not ticks
            pg_cpu[role] += on_cpu_ns(pid) / 1e9
    with admin(postgres, "bench") as conn:
        statements = {
            query: (calls, exec_ms, plan_ms, plans)
            for query, calls, exec_ms, plan_ms, plans in conn.execute(
                "SELECT query, calls, total_exec_time, total_plan_time, plans "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = 'bench' AND query NOT LIKE '%pg_stat%'")}
        commits, rollbacks = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = 'bench'"
        ).fetchone() or (0, 0)
        wal = conn.execute("SELECT wal_records, wal_bytes, wal_sync, wal_write_time, "
                           "wal_sync_time FROM pg_stat_wal").fetchone()
    return Counters(statements, commits, rollbacks, tuple(wal),  # type: ignore[arg-type]
                    cpu.process_seconds(server_pid), dict(pg_cpu), time.perf_counter())


def difference(before: Counters, after: Counters, calls: int, top: int = 25) -> str:
    """Per call: CPU, round trips (statements) by kind, commits, WAL."""
    lines = []
    wall = (after.wall - before.wall) / calls * 1000
    server = (after.server_cpu - before.server_cpu) / calls * 1000
    pg = {role: (after.pg_cpu.get(role, 0.0) - before.pg_cpu.get(role, 0.0)) / calls * 1000
          for role in after.pg_cpu}
    background = sum(ms for role, ms in pg.items() if role != "backend")
    lines.append(f"  per call: wall {wall:.2f} ms, server CPU {server:.2f} ms, PostgreSQL "
                 f"backends CPU {pg.get('backend', 0.0):.2f} ms, its background processes "
                 f"{background:.2f} ms (" + ", ".join(
                     f"{role} {ms:.2f}" for role, ms in sorted(pg.items())
                     if role != "backend" and ms >= 0.01) + ")")
    rows = []
    for query, (calls_after, exec_after, plan_after, plans_after) in after.statements.items():
        calls_b, exec_b, plan_b, plans_b = before.statements.get(query, (0, 0.0, 0.0, 0))
        if calls_after > calls_b:
            rows.append((calls_after - calls_b, exec_after - exec_b, plan_after - plan_b,
                         plans_after - plans_b, query))
    round_trips = sum(row[0] for row in rows) / calls
    executing = sum(row[1] for row in rows) / calls
    planning = sum(row[2] for row in rows) / calls
    commits = (after.commits - before.commits) / calls
    rollbacks = (after.rollbacks - before.rollbacks) / calls
    records, size, syncs, _write_ms, sync_ms = (
        a - b for a, b in zip(after.wal, before.wal, strict=True))
    lines.append(f"  statements (round trips) {round_trips:.1f}, executing {executing:.2f} ms, "
                 f"planning {planning:.2f} ms; transactions committed {commits:.2f}, rolled "
                 f"back {rollbacks:.2f}; WAL {records / calls:.1f} records, "
                 f"{size / calls / 1024:.1f} KiB, {syncs / calls:.2f} flushes (fsync) taking "
                 f"{sync_ms / max(syncs, 1):.3f} ms each, {sync_ms / calls:.2f} ms a call")
    for count, exec_ms, plan_ms, plans, query in sorted(rows, reverse=True)[:top]:
        text = " ".join(query.split())
        lines.append(f"    {count / calls:5.2f}x  exec {exec_ms / count:7.3f} ms  plan "
                     f"{plan_ms / max(plans, 1):6.3f} ms ({plans}/{count} planned)  "
                     f"{text[:110]}")
    return "\n".join(lines)


# ---- py-spy around a phase -----------------------------------------------------------------

@contextmanager
def spied(pid: int, into: Path | None, name: str) -> Iterator[list[str]]:
    """py-spy (--idle: threads waiting on PostgreSQL's socket are sampled too) while inside;
    the summary is appended to the yielded list."""
    report: list[str] = []
    if into is None:
        yield report
        return
    into.mkdir(parents=True, exist_ok=True)
    samples = into / f"{name}.txt"
    spy = subprocess.Popen([pyspy.binary(), "record", "-p", str(pid), "-r", "500", "--idle",
                            "--format", "raw", "-o", str(samples), "-d", "600"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached
    try:
        yield report
    finally:
        spy.send_signal(2)  # py-spy writes what it sampled on SIGINT
        spy.communicate(timeout=120)
        if samples.exists():
            # Only the request threads' stacks: the event loop and the background loops
            # idle most of the time and would bury them.
            stacks = collections.Counter({
                frames: n for frames, n in read_raw(samples).items()
                if any("handle " in frame or "handle(" in frame for frame in frames)})
            report.append(summarise(stacks, 30))


# ---- the phases ----------------------------------------------------------------------------

def chosen_ids(url: str) -> list[str]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            every = list(conn.execute(select(snapshots.c.snapshot_id)
                                      .order_by(snapshots.c.snapshot_id)).scalars())
    finally:
        engine.dispose()
    return every[:: max(1, len(every) // IDS)][:IDS]


def raw_caller(url: str, body: bytes) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """One kept-alive connection sending the signed DescribeTags; the answer read, not
    parsed."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    request = AWSRequest("POST", url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), "ec2", REGION).add_auth(request)
    headers = dict(request.headers.items())

    def call() -> bytes:
        try:
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the idle connection (its keep-alive timeout): once more.
            connection.close()
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
        answer = response.read()
        assert response.status == 200, answer[:300]
        return answer

    return call, connection.close


def timed(call: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter
          ) -> list[float]:
    times = []
    for _ in range(repeat):
        started = clock()
        call()
        times.append((clock() - started) * 1000)
    return times


def spread(times: list[float]) -> str:
    return (f"median {statistics.median(times):.2f} ms "
            f"({min(times):.2f}-{max(times):.2f}, n={len(times)})")


def phase(name: str, postgres: LocalPostgres, server_pid: int, spy: Path | None,
          calls: int, run: Callable[[], str]) -> None:
    with spied(server_pid, spy, name) as report:
        before = read_counters(postgres, server_pid)
        figure = run()
        after = read_counters(postgres, server_pid)
    print(f"== {name}: {figure}; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(difference(before, after, calls), flush=True)
    for text in report:
        print(text, flush=True)


def explain(postgres: LocalPostgres, url: str, chosen: list[str]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of DescribeTags' statement as the server sends it: with the
    ids as one array parameter, custom plan and generic plan (what a prepared statement may
    switch to after five runs)."""
    query = tags_query(ACCOUNT, REGION, [{"Name": "resource-id", "Values": chosen}], None,
                       1000, ids_as_array=True)
    engine = open_engine(url)
    compiled = query.compile(dialect=engine.dialect)
    engine.dispose()
    sql = str(compiled)
    params = compiled.params
    # psycopg's %(name)s placeholders -> positional for PREPARE.
    names = list(params)
    text = sql
    for n, name in enumerate(names, 1):
        text = text.replace(f"%({name})s", f"${n}")
    with admin(postgres, "bench") as conn:
        print(f"-- statement: {' '.join(text.split())}")
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(f"SET plan_cache_mode = {mode}")
            conn.execute("DEALLOCATE ALL")
            conn.execute(f"PREPARE tags_page AS {text}")
            args = ", ".join("%s" for _ in names)
            for attempt in range(2):  # the second: a warm cache
                # Client-side binding: EXECUTE's arguments are literals, typed by PREPARE.
                with psycopg.ClientCursor(conn) as cursor:
                    rows = cursor.execute(
                        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE tags_page({args})",
                        [params[name] for name in names]).fetchall()
                if attempt:
                    print(f"-- {mode}:\n" + "\n".join(row[0] for row in rows))
        conn.execute("RESET plan_cache_mode")
        # The floor of one round trip: an empty statement (what the pool's pre-ping sends).
        trip = timed(lambda: conn.execute(";"), 200)
        print(f"-- one round trip (empty statement, psycopg): {spread(trip)}")


# ---- DescribeTags' statement in other shapes, side by side -------------------------------

COLUMNS = "t.resource_id, t.key, t.value, t.resource_type"
ORDER = "ORDER BY t.resource_id, t.key LIMIT %s"
SHAPES = {
    # As the server sends it (session 23): an array the planner cannot see into.
    "any of array(select unnest)": f"SELECT {COLUMNS} FROM tags t WHERE t.account_id = %s "
                                   "AND t.region = %s AND t.resource_id = ANY(ARRAY(SELECT "
                                   f"unnest(%s::varchar[]))) {ORDER}",
    # Sessions 21-22: the ids as one array parameter, `= ANY`, costed id by id.
    "any": f"SELECT {COLUMNS} FROM tags t WHERE t.account_id = %s AND t.region = %s "
           f"AND t.resource_id = ANY(%s::varchar[]) {ORDER}",
    # The ids as a relation joined to the key.
    "unnest join": f"SELECT {COLUMNS} FROM unnest(%s::varchar[]) AS w(id) JOIN tags t "
                   f"ON t.resource_id = w.id WHERE t.account_id = %s AND t.region = %s {ORDER}",
    # Before session 21: a parameter per id.
    "in list": f"SELECT {COLUMNS} FROM tags t WHERE t.account_id = %s AND t.region = %s "
               f"AND t.resource_id IN ({{marks}}) {ORDER}",
}


def on_cpu_ns(pid: int) -> int:
    """Nanoseconds `pid` has run on a core (schedstat: not inflated by waiting for one)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def shape_args(shape: str, chosen: list[str]) -> tuple[str, list[Any]]:
    sql = SHAPES[shape]
    if shape == "unnest join":
        return sql, [chosen, ACCOUNT, REGION, 1001]
    if shape == "in list":
        return (sql.replace("{marks}", ", ".join(["%s"] * len(chosen))),
                [ACCOUNT, REGION, *chosen, 1001])
    return sql, [ACCOUNT, REGION, chosen, 1001]


def variants(postgres: LocalPostgres, chosen: list[str], repeat: int) -> None:
    """Each shape executed `repeat` times, alternating shape by shape, on one connection
    unprepared (a custom plan each time: what a server whose pool spreads the calls over
    8+ connections gets) and one prepared (psycopg prepares after 5 runs on a connection:
    PostgreSQL's plan cache may then keep a generic plan). Per execution: wall ms and the
    backend's on-CPU ms. The plans come first."""
    with admin(postgres, "bench") as conn:
        for shape in SHAPES:
            sql, args = shape_args(shape, chosen)
            with psycopg.ClientCursor(conn) as cursor:
                plan = cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql,
                                      args).fetchall()
            print(f"-- {shape}, custom plan:\n   " + "\n   ".join(
                row[0][:150] for row in plan), flush=True)
    connections = {
        "unprepared": psycopg.connect(host="127.0.0.1", port=postgres.port, user=PG_USER,
                                      dbname="bench", prepare_threshold=None),
        "prepared": psycopg.connect(host="127.0.0.1", port=postgres.port, user=PG_USER,
                                    dbname="bench", prepare_threshold=0),
    }
    wall: dict[str, list[float]] = collections.defaultdict(list)
    busy: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(repeat + 6):  # six warm-up runs: past psycopg's and PostgreSQL's thresholds
        for mode, conn in connections.items():
            backend = conn.info.backend_pid
            for shape in SHAPES:
                sql, args = shape_args(shape, chosen)
                started, cpu_before = time.perf_counter(), on_cpu_ns(backend)
                rows = conn.execute(sql, args).fetchall()
                conn.rollback()
                wall[f"{shape}, {mode}"].append((time.perf_counter() - started) * 1000)
                busy[f"{shape}, {mode}"].append((on_cpu_ns(backend) - cpu_before) / 1e6)
                assert len(rows) >= len(chosen), (shape, len(rows))
    print(f"| shape | wall ms, median of {repeat} | PostgreSQL backend on-CPU ms |"
          "\n|---|---:|---:|")
    for name in wall:
        print(f"| {name} | {statistics.median(wall[name][6:]):.2f} | "
              f"{statistics.median(busy[name][6:]):.2f} |", flush=True)
    for conn in connections.values():
        conn.close()


# ---- main ----------------------------------------------------------------------------------

class Target:
    """One server over the store, with its clients for the phases."""

    def __init__(self, name: str, server: ServerProcess, chosen: list[str]) -> None:
        assert server.process is not None
        self.name, self.pid, self.url = name, server.process.pid, server.url
        self.ec2 = client(server.url)
        self.flt = [{"Name": "resource-id", "Values": chosen}]
        self.raw, self.close = raw_caller(server.url, body_for(chosen))

    def tags(self) -> None:
        self.ec2.describe_tags(Filters=self.flt, MaxResults=1000)

    def timed(self, call: Callable[[], Any], repeat: int) -> str:
        call()  # untimed: a connection the server closed while the other target ran
        started = time.process_time()
        found = spread(timed(call, repeat))
        own = (time.process_time() - started) / repeat * 1000
        return f"{found}, client CPU {own:.2f} ms a call"


def create_phase(url: str, first: int, count: int, threads: int) -> str:
    """The bench's StartSnapshot + CompleteSnapshot pairs, with the clients' CPU."""
    started = time.process_time()
    rate = create_snapshots(url, first, count, threads)
    own = (time.process_time() - started) / count * 1000
    return f"{rate:.1f} pairs/s from {threads} threads, client CPU {own:.2f} ms a pair"


def run_rounds(args: argparse.Namespace, postgres: LocalPostgres, targets: list[Target]
               ) -> None:
    phases = args.phases.split(",")
    answer = targets[0].raw()
    output = botocore.session.get_session().get_service_model(
        "ec2").operation_model("DescribeTags").output_shape
    reader = create_parser("ec2")

    def parse() -> None:
        reader.parse({"body": answer, "headers": {}, "status_code": 200}, output)

    for target in targets:
        for _ in range(3):  # warm: pool connections, caches
            target.tags()
            target.raw()
    print(f"answer: {len(answer)} bytes, {answer.count(b'<item>')} tags", flush=True)
    for round_ in range(1, args.rounds + 1):
        # Alternated, so the machine's load hits each alike, and in turn first: measured in
        # session 23, the server that goes second in a round ran up to 1.8x faster.
        for target in (targets if round_ % 2 else targets[::-1]):
            label = f"round {round_} {target.name}"
            if "tags" in phases:
                phase(f"{label} tags boto3", postgres, target.pid, args.spy, args.repeat,
                      lambda t=target: t.timed(t.tags, args.repeat))
                phase(f"{label} tags raw", postgres, target.pid, args.spy, args.repeat,
                      lambda t=target: t.timed(t.raw, args.repeat))
            if "creates" in phases:
                first = 10**9 + round_ * 10**7 + targets.index(target) * 10**6

                def creates(first: int = first, url: str = target.url) -> str:
                    return create_phase(url, first, args.creates, args.threads)

                phase(f"{label} creates", postgres, target.pid, args.spy, args.creates,
                      creates)
        if "tags" in phases:
            print(f"== round {round_} tags parse (client CPU): "
                  f"{spread(timed(parse, args.repeat, time.process_time))}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_pg")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spy", type=Path, default=None)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--after-seed", choices=("vacuum", "analyze"), default="vacuum")
    parser.add_argument("--phases", default="tags,creates")
    parser.add_argument("--variants", type=int, default=0,
                        help="run DescribeTags' statement in other shapes this many times")
    parser.add_argument("--before", type=Path, default=None,
                        help="another source tree's snapferry, served beside this one over "
                             "the same store, the phases alternated")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="snapferry-profile-pg-"))
    cpu.isolate_aws_config(root)
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()}; {args.count:,} snapshots",
          flush=True)
    postgres, url = start_postgres()
    try:
        data_dir = root / "data"  # one for both servers: the master key seals the account
        env = {"SNAPFERRY_DATABASE_URL": url}
        with ExitStack() as stack:
            servers = {"this tree": stack.enter_context(
                ServerProcess(data_dir, ["--copy-workers", "0"], env=env))}
            if "creates" in args.phases.split(","):  # the rate on the empty store
                empty = servers["this tree"]
                assert empty.process is not None
                for round_ in range(1, args.rounds + 1):

                    def at_zero(first: int = round_ * 10**5, url: str = empty.url) -> str:
                        return create_phase(url, first, args.creates, args.threads)

                    phase(f"at 0, round {round_} creates", postgres, empty.process.pid,
                          args.spy, args.creates, at_zero)
            started = time.perf_counter()
            seeder = Seeder(url)
            seeder.fill(args.count, 0)
            if args.after_seed == "vacuum":
                seeder.analyze()
            else:
                with seeder.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            seeder.engine.dispose()
            print(f"seeded {args.count:,} in {time.perf_counter() - started:.0f} s "
                  f"({args.after_seed})", flush=True)
            if args.before is not None:
                tree = args.before.resolve()
                servers["before"] = stack.enter_context(ServerProcess(
                    data_dir, ["--copy-workers", "0"], env={**env, "PYTHONPATH": str(tree)},
                    cwd=tree))
            chosen = chosen_ids(url)
            targets = [Target(name, server, chosen) for name, server in servers.items()]
            run_rounds(args, postgres, targets)
            for target in targets:
                target.close()
            if args.explain:
                explain(postgres, url, chosen)
            if args.variants:
                variants(postgres, chosen, args.variants)
    finally:
        postgres.destroy()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
