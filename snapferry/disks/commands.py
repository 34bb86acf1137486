"""The `upload` and `download` subcommands of `snapferry`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from snapferry.disks.session import Target


def _target(args: argparse.Namespace) -> Target:
    return Target(endpoint_url=args.endpoint_url, region=args.region, profile=args.profile,
                  threads=args.threads)


def _run(action: str, work: Callable[[], None]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from snapferry.disks.download import DownloadFailed
    from snapferry.disks.formats import NotRawImage
    from snapferry.disks.upload import UploadFailed

    try:
        work()
    except ClientError as error:
        problem = error.response.get("Error", {})
        print(f"snapferry {action}: {problem.get('Code')}: {problem.get('Message')}",
              file=sys.stderr)
        return 2
    except (BotoCoreError, UploadFailed, DownloadFailed, NotRawImage, OSError) as error:
        print(f"snapferry {action}: {error}", file=sys.stderr)
        return 2
    return 0


def upload(args: argparse.Namespace) -> int:
    from snapferry.disks.upload import UploadOptions
    from snapferry.disks.upload import upload as send

    options = UploadOptions(description=args.description, encrypted=args.encrypted,
                            kms_key_id=args.kms_key_id, restart=args.restart,
                            rate_limit=args.rate_limit, quiet=args.quiet)

    def work() -> None:
        done = send(Path(args.image), _target(args), options)
        if done.blocks_resumed:
            print(f"resumed: {done.blocks_resumed} blocks were already uploaded, "
                  f"{done.blocks_sent} sent now", file=sys.stderr)
        print(f"{done.snapshot_id} sha256:{done.sha256}")

    return _run("upload", work)


def download(args: argparse.Namespace) -> int:
    from snapferry.disks.download import download as fetch

    def work() -> None:
        done = fetch(args.snapshot_id, Path(args.image), _target(args),
                     whole_volume=args.whole_volume, quiet=args.quiet)
        print(f"{args.image} {done.size} bytes sha256:{done.sha256}")

    return _run("download", work)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def client_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--endpoint-url", help="the server (default: $AWS_ENDPOINT_URL or "
                                                "the profile's endpoint_url)")
        sub.add_argument("--region", help="default: $AWS_DEFAULT_REGION or the profile's")
        sub.add_argument("--profile", help="an AWS profile (default: the environment's "
                                           "credentials)")
        sub.add_argument("--threads", type=int, default=8, help="blocks in flight (default 8)")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")

    up = commands.add_parser("upload", help="upload a raw disk image as a snapshot")
    up.add_argument("image", help="a raw disk image file")
    up.add_argument("--description", default="")
    up.add_argument("--encrypted", action="store_true")
    up.add_argument("--kms-key-id", help="the ARN of the KMS key (implies --encrypted)")
    up.add_argument("--restart", action="store_true",
                    help="a new snapshot even if an interrupted run of this upload left one")
    up.add_argument("--rate-limit", type=int, metavar="BYTES_PER_SECOND",
                    help="cap the upload's bandwidth")
    client_options(up)
    up.set_defaults(func=upload)

    down = commands.add_parser("download", help="download a snapshot as a raw disk image")
    down.add_argument("snapshot_id")
    down.add_argument("image", help="the file to write (replaced when complete)")
    down.add_argument("--whole-volume", action="store_true",
                      help="the whole volume, even for a snapshot made by `snapferry upload`")
    client_options(down)
    down.set_defaults(func=download)
