"""The `snapferry` command: serve, and manage accounts (scriptable: flags in, no prompts)."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys

from snapferry.config import DEFAULT_PORT, Settings
from snapferry.domain.accounts import DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, AccessKey
from snapferry.errors import ServiceError
from snapferry.storage.datadir import open_storage
from snapferry.storage.secrets import MasterKeyError


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=Settings.data_dir_from(args.data_dir),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", DEFAULT_PORT),
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from snapferry.server import App, Dispatcher

    settings = _settings(args)
    storage = open_storage(settings)
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
    print("\n".join(lines), flush=True)
    app = App(Dispatcher(storage), settings.max_body_bytes)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal under the
    # handlers it found; finding these, a finished shutdown exits 0 instead of dying by signal.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
    print("snapferry stopped", flush=True)
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="snapferry", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    def data_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-dir",
            help="where metadata, blocks and the master key live "
            "(default: $SNAPFERRY_DATA_DIR or ./snapferry-data)",
        )

    run = commands.add_parser("serve", help="start the service")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    data_dir(run)
    run.set_defaults(func=serve)

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
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ServiceError, MasterKeyError) as error:
        message = error.message if isinstance(error, ServiceError) else str(error)
        print(f"snapferry: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
