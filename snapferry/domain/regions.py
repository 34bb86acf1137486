"""Regions and Availability Zones of the aws partition, as botocore's endpoint data lists them.

Every region botocore knows for EC2 is enabled for every account: there are no opt-in
regions here, so `optInStatus` is `opt-in-not-required` throughout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from snapferry.wire.models import partition_regions

ZONE_LETTERS = "abc"
OPT_IN_STATUS = "opt-in-not-required"
_DIRECTIONS = {
    "east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


@dataclass(frozen=True)
class Region:
    name: str

    @property
    def endpoint(self) -> str:
        return f"ec2.{self.name}.amazonaws.com"

    @property
    def zone_id_prefix(self) -> str:
        """AWS's short form used in zone ids: us-east-1 -> use1, ap-southeast-2 -> apse2."""
        return _zone_id_prefix(self.name)


@cache
def _zone_id_prefix(name: str) -> str:
    # Cached: a DescribeAvailabilityZones asks it for every zone (only known region names
    # reach it: the signature's region is checked first).
    matched = re.fullmatch(r"([a-z]+)-([a-z]+)-(\d+)", name)
    if not matched:
        return name.replace("-", "")
    area, direction, number = matched.groups()
    return f"{area}{_DIRECTIONS.get(direction, direction)}{number}"


@dataclass(frozen=True)
class AvailabilityZone:
    region: Region
    letter: str
    number: int

    @property
    def name(self) -> str:
        return f"{self.region.name}{self.letter}"

    @property
    def zone_id(self) -> str:
        return f"{self.region.zone_id_prefix}-az{self.number}"


@cache
def all_regions() -> tuple[Region, ...]:
    return tuple(Region(name) for name in partition_regions("ec2", "aws"))


@cache
def region_names() -> frozenset[str]:
    return frozenset(region.name for region in all_regions())


def is_region(name: str) -> bool:
    return name in region_names()


def zones(region: Region) -> tuple[AvailabilityZone, ...]:
    return tuple(
        AvailabilityZone(region, letter, number)
        for number, letter in enumerate(ZONE_LETTERS, start=1)
    )
