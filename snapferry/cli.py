"""The `snapferry` command: serve, manage accounts, move disk images in and out (scriptable:
flags in, no prompts)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from snapferry.config import (
    DEFAULT_PORT,
    ConnectionSettings,
    CopySettings,
    ImageSettings,
    Settings,
)
from snapferry.domain.accounts import DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, AccessKey
from snapferry.domain.clock import Clock
from snapferry.errors import ServiceError
from snapferry.storage.datadir import Storage, open_storage
from snapferry.storage.files import ModeError
from snapferry.storage.secrets import MasterKeyError


def _regions(given: str | None) -> frozenset[str]:
    """A comma-separated list of region names; a name that is no region is refused."""
    from snapferry.domain.regions import is_region

    names = frozenset(name.strip() for name in (given or "").split(",") if name.strip())
    unknown = sorted(name for name in names if not is_region(name))
    if unknown:
        raise ServiceError("InvalidRegion", f"not a region: {', '.join(unknown)}")
    return names


def _settings(args: argparse.Namespace) -> Settings:
    copies = CopySettings()
    overrides = {name: getattr(args, f"copy_{name}") for name in
                 ("workers", "rate_limit", "lease_seconds", "quota", "image_quota",
                  "min_seconds_per_gib", "time_based_pair_rate")
                 if getattr(args, f"copy_{name}", None) is not None}
    limits = {name: getattr(args, name) for name in
              ("header_timeout", "body_timeout", "keep_alive_timeout", "max_connections")
              if getattr(args, name, None) is not None}
    return Settings(
        data_dir=Settings.data_dir_from(args.data_dir),
        database_url=Settings.engine_option(getattr(args, "database_url", None),
                                            "SNAPFERRY_DATABASE_URL"),
        block_store=Settings.engine_option(getattr(args, "block_store", None),
                                           "SNAPFERRY_BLOCK_STORE"),
        s3_endpoint_url=Settings.engine_option(getattr(args, "s3_endpoint_url", None),
                                               "SNAPFERRY_S3_ENDPOINT_URL"),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", DEFAULT_PORT),
        copies=dataclasses.replace(copies, **overrides),
        connections=dataclasses.replace(ConnectionSettings(), **limits),
        images=ImageSettings(no_paravirtual_regions=_regions(
            getattr(args, "no_paravirtual_regions", None))),
        **({"orphan_grace_seconds": args.orphan_grace_seconds}
           if getattr(args, "orphan_grace_seconds", None) is not None else {}),
        **({"s3_domain": args.s3_domain} if getattr(args, "s3_domain", None) else {}),
    )


def serve(args: argparse.Namespace) -> int:
    if args.processes > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported: request metrics summed over the processes
        # (engine/metrics.py), in a private directory of this server's own.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="snapferry-metrics-")
    import uvicorn

    from snapferry.server import App, Dispatcher
    from snapferry.serving import uvicorn_config

    settings = _settings(args)
    storage = open_storage(settings)
    watcher = None
    if args.faults_file:
        from snapferry.faults_file import FaultsFileError, FaultsFileWatcher

        watcher = FaultsFileWatcher(Path(args.faults_file).resolve(), storage)
        try:
            watcher.load()
        except FaultsFileError as problem:
            print(f"snapferry: faults file {args.faults_file}: {problem}", file=sys.stderr)
            storage.close()
            return 2
    # We bind the socket ourselves so that `--port 0` works and the printed URL is the real
    # one: a test reads it from our output instead of guessing a free port.
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as error:
        print(f"snapferry: cannot listen on {settings.host}:{settings.port}: {error}",
              file=sys.stderr)
        return 1
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    dev_key = storage.accounts.find(DEV_ACCESS_KEY_ID)
    lines = [f"snapferry listening on {url}", f"  data dir: {settings.data_dir}"]
    if dev_key is not None and dev_key.secret_access_key == DEV_SECRET_ACCESS_KEY:
        lines.append(
            f"  development credentials: account {dev_key.account_id}, access key "
            f"'{DEV_ACCESS_KEY_ID}', secret '{DEV_SECRET_ACCESS_KEY}'"
        )
    lines.append(f"  try: aws --endpoint-url {url} --region us-east-1 sts get-caller-identity")
    clock = None
    if args.clock_offset_file:
        from snapferry.domain.clock import ShiftedClock
        from snapferry.testing import offset_reader

        clock = ShiftedClock(offset_reader(args.clock_offset_file))
    processes, worker_processes = args.processes, args.worker_processes
    if processes < 1 or worker_processes < 0:
        print("snapferry: --processes must be 1 or more, --worker-processes 0 or more",
              file=sys.stderr)
        return 1
    if processes > 1 or worker_processes > 0:
        if watcher is not None:
            # Its thread would be forked into the children mid-way; `snapferry faults` adds
            # the same rules to the database that every process reads.
            print("snapferry: --faults-file works with one process; with --processes or "
                  "--worker-processes use `snapferry faults add`", file=sys.stderr)
            storage.close()
            return 2
        return _serve_processes(settings, storage, sock, lines, processes, worker_processes,
                                clock)
    app = App(Dispatcher(storage, settings, clock), settings.max_body_bytes,
              body_timeout=settings.connections.body_timeout)
    server = uvicorn.Server(uvicorn_config(app, settings))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal under the
    # handlers it found; finding these, a finished shutdown exits 0 instead of dying by signal.
    # A signal that comes before uvicorn installs its own (we are already "listening") asks
    # for the same graceful exit instead of being lost. Installed before the ready line.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: setattr(server, "should_exit", True))
    print("\n".join(lines), flush=True)
    if watcher is not None:
        watcher.start()
    try:
        server.run(sockets=[sock])
    finally:
        if watcher is not None:
            watcher.stop()
    print("snapferry stopped", flush=True)
    return 0


def _serve_processes(settings: Settings, storage: Storage, sock: socket.socket,
                     lines: list[str], processes: int, worker_processes: int,
                     clock: Clock | None = None) -> int:
    """The parent of `serve --processes N --worker-processes M` (snapferry/supervisor.py):
    start-up work once, here, then the children; copies run in the worker processes only
    (none at all with --copy-workers 0)."""
    import datetime as dt

    from snapferry.domain.clock import SystemClock
    from snapferry.engine.background import Background
    from snapferry.supervisor import supervise

    Background(storage, clock or SystemClock(),
               dt.timedelta(seconds=settings.orphan_grace_seconds)).start_up()
    storage.close()  # no connection crosses a fork
    copy_threads = settings.copies.workers
    api_settings = dataclasses.replace(
        settings, copies=dataclasses.replace(settings.copies, workers=0)
    ) if worker_processes else settings
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lines.insert(2, f"  {processes} API processes, "
                    f"{worker_processes if copy_threads else 0} copy worker processes")
    print("\n".join(lines), flush=True)
    try:
        code = supervise(api_settings, sock, processes,
                         worker_processes if copy_threads else 0, worker_settings=settings,
                         clock=clock)
    finally:
        shared_metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if "snapferry-metrics-" in shared_metrics:  # ours (serve made it), not an operator's
            import shutil

            shutil.rmtree(shared_metrics, ignore_errors=True)
    print("snapferry stopped", flush=True)
    return code


def worker(args: argparse.Namespace) -> int:
    """Copy workers only, sharing a running `snapferry serve`'s database and block store."""
    from snapferry.supervisor import run_worker

    return run_worker(_settings(args))


def copies(args: argparse.Namespace) -> int:
    import datetime as dt

    from snapferry.engine.metrics import rate_text
    from snapferry.storage.copies import list_jobs

    storage = open_storage(_settings(args))
    with storage.engine.connect() as conn:
        jobs = list_jobs(conn)
    storage.close()
    now = dt.datetime.now(dt.UTC)
    # COPY is the destination: a snapshot, or for a bundle copy (an instance-store image's
    # S3 objects; PROGRESS counts its files) the new image.
    print(f"{'COPY':22} {'KIND':8} {'SOURCE':34} {'DEST':14} {'STATE':9} {'MODE':11} "
          f"{'PROGRESS':>8} {'BYTES MOVED':>12} RATE")
    for job in jobs:
        done = f"{job.blocks_done}/{job.blocks_total}" if job.blocks_total is not None else "-"
        print(f"{job.snapshot_id:22} {job.kind or 'snapshot':8} "
              f"{job.source_region + ':' + job.source_snapshot_id:34} "
              f"{job.dest_region:14} {job.state:9} {job.mode or '-':11} {done:>8} "
              f"{job.bytes_moved:>12} {rate_text(job, now)}")
    return 0


def accounts_add(args: argparse.Namespace) -> int:
    storage = open_storage(_settings(args))
    try:
        storage.accounts.add(
            AccessKey(args.account_id, args.access_key_id, args.secret_access_key)
        )
    finally:
        storage.close()
    print(f"added access key {args.access_key_id} for account {args.account_id}")
    return 0


def accounts_list(args: argparse.Namespace) -> int:
    storage = open_storage(_settings(args))
    try:
        rows = storage.accounts.list()
    finally:
        storage.close()
    print("ACCOUNT       ACCESS KEY ID")
    for account_id, access_key_id in rows:
        print(f"{account_id}  {access_key_id}")
    return 0


def accounts_create(args: argparse.Namespace) -> int:
    """A new account with a root access key; the secret is shown once, here."""
    import secrets

    from snapferry.domain import iam

    storage = open_storage(_settings(args))
    try:
        account_id = args.account_id
        while account_id is None:  # twelve random digits, not yet taken
            candidate = f"{secrets.randbelow(10**12):012d}"
            account_id = None if storage.accounts.account_exists(candidate) else candidate
        if storage.accounts.account_exists(account_id):
            raise ServiceError("EntityAlreadyExists", f"Account {account_id} already exists; "
                               "add a key to it with `snapferry accounts add`.")
        key = AccessKey(account_id, iam.new_id("key"), iam.new_secret())
        storage.accounts.add(key)
    finally:
        storage.close()
    print(f"created account {key.account_id}")
    print(f"  access key id:     {key.access_key_id}")
    print(f"  secret access key: {key.secret_access_key}")
    return 0


def accounts_users(args: argparse.Namespace) -> int:
    """The IAM users of an account and their access keys (secrets left out)."""
    from snapferry.storage import iam as iam_store

    storage = open_storage(_settings(args))
    try:
        with storage.engine.connect() as conn:
            rows = [(user, iam_store.access_keys_of(conn, args.account_id, user.name))
                    for user in iam_store.list_users(conn, args.account_id)]
    finally:
        storage.close()
    print(f"{'USER':24} {'ARN':56} ACCESS KEYS")
    for user, keys in rows:
        listed = ", ".join(f"{k.access_key_id} ({k.status or 'Active'})"  # type: ignore[attr-defined]
                           for k in keys) or "-"
        print(f"{user.name:24} {user.arn:56} {listed}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="snapferry", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    def data_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-dir",
            help="where metadata, blocks and the master key live "
            "(default: $SNAPFERRY_DATA_DIR or ./snapferry-data)",
        )
        engines = sub.add_argument_group("scale-out engines (DEPLOY.md)")
        engines.add_argument(
            "--database-url", metavar="URL",
            help="metadata in this database instead of SQLite in the data dir, e.g. "
                 "postgresql+psycopg://snapferry@db/snapferry ($SNAPFERRY_DATABASE_URL)")
        engines.add_argument(
            "--block-store", metavar="s3://BUCKET[/PREFIX]",
            help="blocks in this S3 bucket instead of the data dir ($SNAPFERRY_BLOCK_STORE)")
        engines.add_argument(
            "--s3-endpoint-url", metavar="URL",
            help="the S3-compatible endpoint of --block-store ($SNAPFERRY_S3_ENDPOINT_URL)")

    def copy_options(sub: argparse.ArgumentParser, workers_help: str) -> None:
        sub.add_argument("--copy-workers", type=int, help=workers_help)
        sub.add_argument("--copy-rate-limit", type=int, metavar="BYTES_PER_SECOND",
                         help="cap every snapshot copy at this rate (default: no cap)")
        sub.add_argument("--copy-lease-seconds", type=float,
                         help="how long a silent copy worker keeps its job (default 10)")
        sub.add_argument("--copy-quota", type=int,
                         help="snapshot copies in flight per account and region (default 20)")
        sub.add_argument("--copy-image-quota", type=int,
                         help="image copies in flight per account and region (default 100)")
        sub.add_argument("--copy-min-seconds-per-gib", type=float, metavar="SECONDS",
                         help="every copy takes at least this long per GiB of blocks it walks "
                              "(default: none, as fast as the disk goes)")
        sub.add_argument("--copy-time-based-pair-rate", type=int, metavar="BYTES_PER_SECOND",
                         help="time-based copies between one pair of regions share this rate, "
                              "across every worker process (default 2000 MiB/s, as AWS)")

    run = commands.add_parser("serve", help="start the service")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    run.add_argument("--header-timeout", type=float, metavar="SECONDS",
                     help="close a connection whose request headers take longer (default 10)")
    run.add_argument("--body-timeout", type=float, metavar="SECONDS",
                     help="refuse a request whose body takes longer after its headers "
                          "(default 30)")
    run.add_argument("--keep-alive-timeout", type=float, metavar="SECONDS",
                     help="close an idle kept-alive connection after this (default 5)")
    run.add_argument("--max-connections", type=int,
                     help="open connections past which requests get 503 (default 512)")
    run.add_argument("--processes", type=int, default=1, metavar="N",
                     help="API processes sharing the port (default 1; more need "
                          "--database-url: SQLite takes one writer at a time)")
    run.add_argument("--worker-processes", type=int, default=0, metavar="M",
                     help="run copies in M processes of their own instead of threads of the "
                          "API processes (default 0)")
    data_dir(run)
    run.add_argument("--no-paravirtual-regions", metavar="REGION,REGION",
                     help="regions where paravirtual images cannot be registered or copied "
                          "(default: none)")
    run.add_argument("--faults-file", metavar="TOML",
                     help="fault rules from this file, applied again whenever it changes "
                          "(README, \"Faults file\")")
    run.add_argument("--orphan-grace-seconds", type=float,
                     help="collect objects a dead writer left after this long (default 3600)")
    run.add_argument("--s3-domain", metavar="DOMAIN",
                     help="S3 virtual-host addressing: <bucket>.DOMAIN names a bucket "
                          "(default localhost)")
    # For tests: the server's clock runs this many seconds (read from the file) ahead.
    run.add_argument("--clock-offset-file", help=argparse.SUPPRESS)
    copy_options(run, "copy worker threads in this process (default 2; 0: use "
                      "`snapferry worker`)")
    run.set_defaults(func=serve)

    work = commands.add_parser("worker", help="run copy workers for a data dir")
    data_dir(work)
    copy_options(work, "copy worker threads (default 2)")
    work.set_defaults(func=worker)

    listing_copies = commands.add_parser(
        "copies", help="list copy jobs (snapshots, and instance-store images' bundles)")
    data_dir(listing_copies)
    listing_copies.set_defaults(func=copies)

    accounts = commands.add_parser("accounts", help="manage accounts and access keys")
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    add = account_commands.add_parser("add", help="add an access key (and its account)")
    data_dir(add)
    add.add_argument("--account-id", required=True)
    add.add_argument("--access-key-id", required=True)
    add.add_argument("--secret-access-key", required=True)
    add.set_defaults(func=accounts_add)
    listing = account_commands.add_parser("list", help="list accounts and their key ids")
    data_dir(listing)
    listing.set_defaults(func=accounts_list)
    create = account_commands.add_parser(
        "create", help="create an account with a new root access key (printed once)")
    data_dir(create)
    create.add_argument("--account-id", help="12 digits (default: a new random one)")
    create.set_defaults(func=accounts_create)
    users = account_commands.add_parser("users", help="list an account's IAM users and keys")
    data_dir(users)
    users.add_argument("--account-id", required=True)
    users.set_defaults(func=accounts_users)

    from snapferry.faults_cli import add_commands as add_fault_commands

    add_fault_commands(commands, data_dir)

    from snapferry.images_cli import add_commands as add_image_commands

    add_image_commands(commands, data_dir)

    from snapferry.disks.commands import add_commands

    add_commands(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ServiceError, MasterKeyError, ModeError) as error:
        message = error.message if isinstance(error, ServiceError) else str(error)
        print(f"snapferry: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
