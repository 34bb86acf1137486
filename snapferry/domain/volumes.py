"""Volumes: types, sizes, and what a new volume holds.

A volume here is data at rest: created empty or from a snapshot (it then holds the
snapshot's blocks, shared, not copied), snapshotted, deleted. Nothing attaches it to an
instance, so it is `available` once its data is in place: at once, unless its blocks must
be encrypted anew (a new key), when it is `creating` until they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from snapferry.errors import ServiceError

CREATING, AVAILABLE, ERROR = "creating", "available", "error"
DEFAULT_TYPE = "gp2"
# GiB ranges per type, as AWS documents them.
SIZE_RANGES = {
    "standard": (1, 1024),
    "gp2": (1, 16384),
    "gp3": (1, 65536),
    "io1": (4, 16384),
    "io2": (4, 65536),
    "st1": (125, 16384),
    "sc1": (125, 16384),
}


@dataclass
class Volume:
    volume_id: str
    account_id: str
    region: str
    availability_zone: str
    size: int
    volume_type: str
    snapshot_id: str
    state: str
    encrypted: bool
    lineage_id: str
    create_time: dt.datetime
    multi_attach: bool = False
    iops: int | None = None
    throughput: int | None = None
    kms_key_id: str | None = None
    client_token: str | None = None
    request_digest: str | None = None


def not_found(volume_id: str) -> ServiceError:
    return ServiceError("InvalidVolume.NotFound", f"The volume '{volume_id}' does not exist.")


def check_type_and_size(volume_type: str, size: int) -> None:
    if volume_type not in SIZE_RANGES:
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({volume_type}) for parameter volumeType is invalid; valid types: "
            f"{', '.join(SIZE_RANGES)}.",
        )
    low, high = SIZE_RANGES[volume_type]
    if not low <= size <= high:
        raise ServiceError(
            "InvalidParameterValue",
            f"Volume of {size}GiB is out of range for type {volume_type}: "
            f"{low} to {high} GiB.",
        )


# Provisioned IOPS per type, as the EC2 model documents CreateVolume's Iops: (lowest,
# highest, most IOPS per GiB of size). Required for io1/io2, optional for gp3 (3,000 when
# omitted), refused for every other type.
IOPS_RANGES = {
    "gp3": (3000, 80000, 500),
    "io1": (100, 64000, 50),
    "io2": (100, 256000, 1000),
}
IOPS_REQUIRED = frozenset({"io1", "io2"})
# Throughput, MiB/s: gp3 only, 125-2000 (the model's CreateVolume documentation).
THROUGHPUT_RANGE = (125, 2000)
GP3_BASELINE_IOPS = 3000


def check_performance(volume_type: str, size: int, iops: int | None,
                      throughput: int | None) -> None:
    """Iops and Throughput as AWS validates them for the volume type (after the type and
    size are known to be valid)."""
    if iops is None and volume_type in IOPS_REQUIRED:
        raise ServiceError("InvalidParameterCombination",
                           f"The parameter iops must be specified for {volume_type} volumes.")
    if iops is not None:
        if volume_type not in IOPS_RANGES:
            raise ServiceError("InvalidParameterCombination",
                               f"The parameter iops is not supported for {volume_type} volumes.")
        low, high, per_gib = IOPS_RANGES[volume_type]
        if not low <= iops <= high:
            raise ServiceError("InvalidParameterValue",
                               f"Volume iops of {iops} is out of range for {volume_type}: "
                               f"{low} to {high}.")
        # gp3 gets its 3,000 baseline at any size; more than that needs size.
        if iops > max(per_gib * size, GP3_BASELINE_IOPS if volume_type == "gp3" else 0):
            raise ServiceError("InvalidParameterValue",
                               f"Iops to volume size ratio of {iops / size:f} is too high; "
                               f"maximum is {per_gib:f}.")
    if throughput is not None:
        if volume_type != "gp3":
            raise ServiceError("InvalidParameterCombination",
                               "The parameter throughput can only be specified for volumeType "
                               f"gp3, not {volume_type}.")
        low, high = THROUGHPUT_RANGE
        if not low <= throughput <= high:
            raise ServiceError("InvalidParameterValue",
                               f"Volume throughput of {throughput} MiB/s is out of range for "
                               f"gp3: {low} to {high}.")


GP3_BASELINE_THROUGHPUT = 125
# gp2's IOPS follow its size: 3 per GiB, at least 100, at most 16,000 (the model's Iops doc).
GP2_IOPS_PER_GIB, GP2_IOPS_RANGE = 3, (100, 16000)


def provisioned(volume_type: str, size: int, iops: int | None,
                throughput: int | None) -> tuple[int | None, int | None]:
    """The Iops and Throughput a volume reports: what was asked, else the type's baseline
    (gp3 3,000 IOPS and 125 MiB/s, gp2 3 IOPS per GiB); none for magnetic and HDD types."""
    if volume_type == "gp3":
        return (iops if iops is not None else GP3_BASELINE_IOPS,
                throughput if throughput is not None else GP3_BASELINE_THROUGHPUT)
    if volume_type == "gp2":
        low, high = GP2_IOPS_RANGE
        return min(max(GP2_IOPS_PER_GIB * size, low), high), None
    return iops, throughput


def size_for(requested: int | None, snapshot_size: int | None, snapshot_id: str | None) -> int:
    """The new volume's size: as requested, else the snapshot's; never below the snapshot."""
    if requested is None and snapshot_size is None:
        raise ServiceError("MissingParameter", "The request must contain the parameter size "
                           "or snapshotId.")
    size = requested if requested is not None else snapshot_size
    assert size is not None
    if snapshot_size is not None and size < snapshot_size:
        raise ServiceError(
            "InvalidParameterValue",
            f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', expect size >= "
            f"{snapshot_size}GiB.",
        )
    return size
