"""DescribeRegions and DescribeAvailabilityZones."""

from __future__ import annotations

from typing import Any

from snapferry.domain import regions
from snapferry.domain.filters import apply_filters
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext

REGION_FILTERS = {
    "endpoint": lambda r: [r.endpoint],
    "region-name": lambda r: [r.name],
    "opt-in-status": lambda r: [regions.OPT_IN_STATUS],
}

ZONE_FILTERS = {
    "zone-name": lambda z: [z.name],
    "zone-id": lambda z: [z.zone_id],
    "region-name": lambda z: [z.region.name],
    "group-name": lambda z: [z.region.name],
    "group-long-name": lambda z: [z.region.name],
    "network-border-group": lambda z: [z.region.name],
    "state": lambda z: ["available"],
    "zone-type": lambda z: ["availability-zone"],
    "opt-in-status": lambda z: [regions.OPT_IN_STATUS],
    "parent-zone-name": lambda z: [],
    "parent-zone-id": lambda z: [],
    "message": lambda z: [],
}


def describe_regions(ctx: RequestContext, params: dict[str, Any]) -> Output:
    found = list(regions.all_regions())
    wanted = params.get("RegionNames")
    if wanted:
        unknown = [name for name in wanted if not regions.is_region(name)]
        if unknown:
            raise ServiceError(
                "InvalidParameterValue", f"Invalid region names: {', '.join(unknown)}."
            )
        found = [region for region in found if region.name in wanted]
    found = apply_filters(found, params.get("Filters"), REGION_FILTERS)
    ctx.authorize()
    return {
        "Regions": [
            {
                "RegionName": region.name,
                "Endpoint": region.endpoint,
                "OptInStatus": regions.OPT_IN_STATUS,
            }
            for region in found
        ]
    }


def describe_availability_zones(ctx: RequestContext, params: dict[str, Any]) -> Output:
    region = regions.Region(ctx.region)
    found = list(regions.zones(region))
    names, ids = params.get("ZoneNames"), params.get("ZoneIds")
    for given, key in ((names, "name"), (ids, "zone_id")):
        if not given:
            continue
        known = {getattr(zone, key) for zone in found}
        unknown = [value for value in given if value not in known]
        if unknown:
            raise ServiceError(
                "InvalidParameterValue",
                f"The zone '{unknown[0]}' does not exist in region {region.name}; "
                f"its zones are {', '.join(sorted(known))}.",
            )
    if names or ids:
        found = [
            zone for zone in found if zone.name in (names or ()) or zone.zone_id in (ids or ())
        ]
    found = apply_filters(found, params.get("Filters"), ZONE_FILTERS)
    ctx.authorize()
    return {
        "AvailabilityZones": [
            {
                "State": "available",
                "OptInStatus": regions.OPT_IN_STATUS,
                "Messages": [],
                "RegionName": region.name,
                "ZoneName": zone.name,
                "ZoneId": zone.zone_id,
                "GroupName": region.name,
                "NetworkBorderGroup": region.name,
                "ZoneType": "availability-zone",
            }
            for zone in found
        ]
    }


HANDLERS = {
    "DescribeRegions": describe_regions,
    "DescribeAvailabilityZones": describe_availability_zones,
}
