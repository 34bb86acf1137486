"""RegisterImage with an ImageLocation: an instance-store image from a bundle in S3 (its
manifest and parts, domain/bundles.py). Every part must exist beside the manifest, be
readable by the caller and match its SHA-1; else InvalidManifest, and nothing is written."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.exc import IntegrityError

from snapferry.domain import bundles, ids
from snapferry.domain import images as rules
from snapferry.domain.images import BlockDevice, Image
from snapferry.domain.tags import tags_for
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.s3.common import object_files, readable_object
from snapferry.storage import images as store
from snapferry.storage.objectfiles import ObjectGone
from snapferry.storage.tagstore import set_tags


def _sha1(ctx: RequestContext, file_id: str) -> str:
    digest = hashlib.sha1()
    try:
        for piece in object_files(ctx).read(file_id):
            digest.update(piece)
    except ObjectGone:
        return ""
    return digest.hexdigest()


def _read_manifest(ctx: RequestContext, location: str) -> bundles.Manifest:
    bucket, key = bundles.split_location(location)
    with ctx.storage.engine.connect() as conn:
        manifest = readable_object(ctx, conn, bucket, key)
    if manifest is None:
        raise bundles.invalid(f"s3://{bucket[:63]}/{key[:200]} does not exist in "
                              f"{ctx.region}, or you may not read it.")
    document = b"".join(object_files(ctx).read(manifest.file_id))
    parsed = bundles.parse(document)
    for part in parsed.parts:
        part_key = bundles.part_key(key, part.filename)
        with ctx.storage.engine.connect() as conn:
            found = readable_object(ctx, conn, bucket, part_key)
        if found is None:
            raise bundles.invalid(f"part {part.index} (s3://{bucket}/{part_key[:200]}) does "
                                  "not exist, or you may not read it.")
        if _sha1(ctx, found.file_id) != part.sha1:
            raise bundles.invalid(f"part {part.index} ({part.filename}) does not match its "
                                  "SHA-1 digest in the manifest.")
    return parsed


def register_from_manifest(ctx: RequestContext, params: dict[str, Any]) -> Output:
    if params.get("BlockDeviceMappings") and any(
            "Ebs" in m for m in params["BlockDeviceMappings"]):
        raise ServiceError("InvalidBlockDeviceMapping", "An instance-store image (one "
                           "registered from an ImageLocation) cannot map EBS volumes.")
    attributes = rules.registration_attributes(params)
    tags = tags_for(params.get("TagSpecifications"), "image")
    location = params["ImageLocation"]
    manifest = _read_manifest(ctx, location)
    if not params.get("Architecture"):
        attributes["architecture"] = manifest.architecture
    root = params.get("RootDeviceName") or manifest.root_device_name
    devices = [BlockDevice(device_name=device, virtual_name=virtual)
               for device, virtual in manifest.ephemeral()]
    name = attributes["name"]
    with ctx.storage.engine.begin() as conn:
        if store.name_in_use(conn, ctx.account_id, ctx.region, name):
            raise rules.duplicate_name(name)
        ctx.authorize()
        image = Image(
            image_id=ids.new_id("ami"), account_id=ctx.account_id, region=ctx.region,
            state=rules.AVAILABLE, creation_date=ctx.clock.now(),
            image_location=location.lstrip("/"), root_device_name=root,
            root_device_type="instance-store", block_devices=devices, **attributes)
        try:
            with conn.begin_nested():
                store.insert_image(conn, image)
        except IntegrityError as error:
            raise rules.duplicate_name(name) from error
        set_tags(conn, image.image_id, "image", ctx.account_id, ctx.region, tags)
    return {"ImageId": image.image_id}
