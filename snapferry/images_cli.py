"""`snapferry images import` and `snapferry images product-code`: what only an operator can
do to images, written to the database and block store of a data dir (the server may be
running; it sees the result at once)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from snapferry.cli import _settings
    from snapferry.storage.datadir import open_storage

    return open_storage(_settings(args))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def import_disk(args: argparse.Namespace) -> int:
    from snapferry.cli import _regions
    from snapferry.disks.formats import NotRawImage, require_raw
    from snapferry.storage.image_import import ImportRequest, import_image

    path = Path(args.image)
    try:
        require_raw(path)
    except (NotRawImage, OSError) as problem:
        print(f"snapferry images import: {problem}", file=sys.stderr)
        return 2
    request = ImportRequest(
        name=args.name, regions=sorted(_regions(args.regions)), owner_alias=args.owner_alias,
        account_id=args.owner_id, description=args.description,
        architecture=args.architecture, virtualization_type=args.virtualization_type,
        boot_mode=args.boot_mode, root_device_name=args.root_device_name,
        volume_type=args.volume_type)
    storage = _open(args)
    try:
        imported = import_image(storage, path, request, _now)
    finally:
        storage.close()
    for item in imported:
        print(f"{item.region} {item.image_id} {item.snapshot_id}")
    return 0


def mark_product_code(args: argparse.Namespace) -> int:
    from snapferry.domain import images as rules
    from snapferry.storage import images as image_store

    try:
        code = rules.check_product_code(args.code, args.type)
    except ValueError as problem:
        print(f"snapferry images product-code: {problem}", file=sys.stderr)
        return 2
    storage = _open(args)
    try:
        with storage.engine.begin() as conn:
            image = image_store.get_image(conn, args.region, args.image_id)
            if image is None or image.state == rules.DEREGISTERED:
                raise rules.not_found(args.image_id)
            image_store.add_product_codes(conn, image.image_id, [code])
    finally:
        storage.close()
    print(f"{args.image_id} product code {code[0]} ({code[1]})")
    return 0


def add_commands(commands: argparse._SubParsersAction,  # type: ignore[type-arg]
                 data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    images = commands.add_parser("images", help="operator-only image actions")
    actions = images.add_subparsers(dest="images_command", required=True)

    add = actions.add_parser(
        "import", help="a raw disk image becomes a public image owned by an alias (amazon)")
    add.add_argument("image", help="a raw disk image file")
    add.add_argument("--name", required=True, help="the image name (AMI name rules)")
    add.add_argument("--regions", required=True, metavar="REGION,REGION",
                     help="the regions to import into, each its own image and snapshot")
    add.add_argument("--owner-alias", default="amazon", choices=("amazon", "aws-marketplace"))
    add.add_argument("--owner-id", help="the owning account (default: the alias's own, "
                                        "137112412989 for amazon)")
    add.add_argument("--description")
    add.add_argument("--architecture", default="x86_64")
    add.add_argument("--virtualization-type", default="hvm", choices=("hvm", "paravirtual"))
    add.add_argument("--boot-mode", choices=("legacy-bios", "uefi", "uefi-preferred"))
    add.add_argument("--root-device-name", default="/dev/xvda")
    add.add_argument("--volume-type", default="gp3")
    data_dir(add)
    add.set_defaults(func=import_disk)

    mark = actions.add_parser("product-code", help="give an image a product code (the public "
                                                   "API cannot)")
    mark.add_argument("image_id")
    mark.add_argument("--region", required=True)
    mark.add_argument("--code", required=True, help="e.g. aw0evgkw8e5c1q413zgy5pjce")
    mark.add_argument("--type", default="marketplace", choices=("marketplace", "devpay"))
    data_dir(mark)
    mark.set_defaults(func=mark_product_code)

