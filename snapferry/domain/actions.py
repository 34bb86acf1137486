"""What each operation asks IAM: its action, the resource ARNs it acts on and the condition
keys the request supplies (AWS's Service Authorization Reference), in one table.

RequestContext.authorize() looks an operation up here; a handler only adds what it alone
knows (a KMS key's ARN and policy once it has found the key). Snapshot and image ARNs carry
no account (`arn:aws:ec2:REGION::snapshot/ID`); volumes do. CopyImage's resource-level
permissions apply to the new image only, so its only resource is `image/*` in the caller's
region. Operations not listed act on "*" (no resource-level permissions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snapferry.domain import s3_actions

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Where:
    """Where the request acts: the caller's account and region, and its user name (for
    IAM's self-service operations that name no user)."""

    account_id: str
    region: str
    user_name: str | None = None


@dataclass(frozen=True)
class Asked:
    """One operation's question to the evaluator."""

    action: str
    resources: tuple[str, ...]
    conditions: Mapping[str, Any] = field(default_factory=dict)


def snapshot_arn(region: str, snapshot_id: str) -> str:
    return f"arn:aws:ec2:{region}::snapshot/{snapshot_id}"


def image_arn(region: str, image_id: str) -> str:
    return f"arn:aws:ec2:{region}::image/{image_id}"


def volume_arn(region: str, account_id: str, volume_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account_id}:volume/{volume_id}"


def ec2_arn(where: Where, resource_id: str) -> str:
    """The ARN of an EC2 resource named by its id (CreateTags' Resources)."""
    if resource_id.startswith("snap-"):
        return snapshot_arn(where.region, resource_id)
    if resource_id.startswith("ami-"):
        return image_arn(where.region, resource_id)
    if resource_id.startswith("vol-"):
        return volume_arn(where.region, where.account_id, resource_id)
    return f"arn:aws:ec2:{where.region}:{where.account_id}:{resource_id}"


Resources = Callable[[Params, Where], list[str]]


def _snapshot(name: str = "SnapshotId") -> Resources:
    return lambda p, w: [snapshot_arn(w.region, p[name])] if p.get(name) else []


def _image(name: str = "ImageId") -> Resources:
    return lambda p, w: [image_arn(w.region, p[name])] if p.get(name) else []


def _volume(name: str = "VolumeId") -> Resources:
    return lambda p, w: ([volume_arn(w.region, w.account_id, p[name])] if p.get(name)
                         else [])


def _new(kind: str) -> Resources:
    return lambda p, w: [f"arn:aws:ec2:{w.region}::{kind}/*" if kind != "volume"
                         else f"arn:aws:ec2:{w.region}:{w.account_id}:volume/*"]


def _all(*parts: Resources) -> Resources:
    return lambda p, w: [arn for part in parts for arn in part(p, w)]


EC2: dict[str, Resources] = {
    # CopySnapshot: the source (in its region) and the new snapshot.
    "CopySnapshot": lambda p, w: [snapshot_arn(p["SourceRegion"], p["SourceSnapshotId"]),
                                  f"arn:aws:ec2:{w.region}::snapshot/*"],
    "CopyImage": _new("image"),
    "CreateSnapshot": _all(_volume(), _new("snapshot")),
    "DeleteSnapshot": _snapshot(),
    "DescribeSnapshotAttribute": _snapshot(),
    "ModifySnapshotAttribute": _snapshot(),
    "ResetSnapshotAttribute": _snapshot(),
    "ModifySnapshotTier": _snapshot(),
    "RestoreSnapshotTier": _snapshot(),
    "CreateVolume": _all(_new("volume"), _snapshot()),
    "DeleteVolume": _volume(),
    "RegisterImage": _new("image"),
    "DeregisterImage": _image(),
    "DescribeImageAttribute": _image(),
    "ModifyImageAttribute": _image(),
    "ResetImageAttribute": _image(),
    "EnableImageDeprecation": _image(),
    "DisableImageDeprecation": _image(),
    "EnableImageDeregistrationProtection": _image(),
    "DisableImageDeregistrationProtection": _image(),
    "GetImageAncestry": _image(),
    "CreateTags": lambda p, w: [ec2_arn(w, r) for r in p.get("Resources") or ()],
    "DeleteTags": lambda p, w: [ec2_arn(w, r) for r in p.get("Resources") or ()],
}

EBS: dict[str, Resources] = {
    "StartSnapshot": lambda p, w: [f"arn:aws:ec2:{w.region}::snapshot/*"],
    **{name: _snapshot() for name in ("PutSnapshotBlock", "CompleteSnapshot",
                                      "GetSnapshotBlock", "ListSnapshotBlocks")},
    "ListChangedBlocks": lambda p, w: [snapshot_arn(w.region, p[n])
                                       for n in ("FirstSnapshotId", "SecondSnapshotId")
                                       if p.get(n)],
}


def kms_key_arn(where: Where, key_id: str) -> str:
    """The ARN a KeyId names before the key is looked up: an ARN as given, an alias name or a
    bare key id in the caller's account and region."""
    if key_id.startswith("arn:"):
        return key_id
    kind = "" if key_id.startswith("alias/") else "key/"
    return f"arn:aws:kms:{where.region}:{where.account_id}:{kind}{key_id}"


# KMS operations whose KeyId is a filter, not the key acted on (kms:ListAliases is on "*").
_KMS_NOT_ON_KEY = frozenset({"ListAliases"})


def _iam_entity(operation: str) -> tuple[str, str] | None:
    """The entity an IAM operation acts on, by its name: AddUserToGroup and AttachGroupPolicy
    act on the group, ListGroupsForUser on the user, AttachRolePolicy on the role."""
    if "Group" in operation and not operation.endswith("ForUser"):
        return "GroupName", "group"
    if "Role" in operation:
        return "RoleName", "role"
    if "User" in operation or "AccessKey" in operation:
        return "UserName", "user"
    return None


def _iam(operation: str, p: Params, w: Where) -> list[str]:
    entity = _iam_entity(operation)
    if entity is not None and p.get(entity[0]):
        return [f"arn:aws:iam::{w.account_id}:{entity[1]}/{p[entity[0]]}"]
    if p.get("PolicyArn"):
        return [p["PolicyArn"]]
    if operation == "CreatePolicy":
        return [f"arn:aws:iam::{w.account_id}:policy{p.get('Path') or '/'}{p['PolicyName']}"]
    if entity is not None and entity[1] == "user" and w.user_name:
        # Operations that name no user act on the caller's own (GetUser, CreateAccessKey).
        return [f"arn:aws:iam::{w.account_id}:user/{w.user_name}"]
    return ["*"]


def _request_tags(p: Params) -> dict[str, str]:
    """Tags a request puts on what it creates: EC2's TagSpecifications, IAM's and STS's
    Tags (Key/Value), KMS's Tags (TagKey/TagValue)."""
    tags: dict[str, str] = {}
    for spec in p.get("TagSpecifications") or ():
        for tag in spec.get("Tags") or ():
            tags[tag.get("Key", "")] = tag.get("Value", "")
    for tag in p.get("Tags") or ():
        if isinstance(tag, dict):
            key = tag.get("Key", tag.get("TagKey"))
            if key is not None:
                tags[key] = tag.get("Value", tag.get("TagValue", ""))
    return tags


def conditions(service: str, p: Params, where: Where) -> dict[str, Any]:
    """The condition keys a request supplies by its parameters."""
    found: dict[str, Any] = {"aws:RequestedRegion": where.region}
    tags = _request_tags(p)
    for key, value in tags.items():
        found[f"aws:RequestTag/{key}"] = value
    if tags:
        found["aws:TagKeys"] = list(tags)
    if service == "ec2" and p.get("Encrypted") is not None:
        found["ec2:Encrypted"] = bool(p["Encrypted"])
    if service == "ec2" and p.get("SourceRegion"):
        found["ec2:SourceRegion"] = p["SourceRegion"]
    if service == "iam" and p.get("PolicyArn"):
        found["iam:PolicyARN"] = p["PolicyArn"]
    if service == "sts" and p.get("ExternalId") is not None:
        found["sts:ExternalId"] = p["ExternalId"]
    if service == "sts" and p.get("RoleSessionName"):
        found["sts:RoleSessionName"] = p["RoleSessionName"]
    return found


# Condition keys a resource supplies itself (besides its tags, */ResourceTag/*): not known
# until it is looked up. A request may supply some of them (CreateVolume's ec2:Encrypted).
_RESOURCE_KEYS = frozenset(key.lower() for key in (
    "ec2:Encrypted", "ec2:VolumeSize", "ec2:VolumeType", "ec2:Owner", "ec2:ParentVolume",
    "ec2:ParentSnapshot", "ec2:SnapshotTime", "ec2:Public", "ec2:ImageType",
    "ec2:RootDeviceType", "ec2:ImageID", "kms:KeySpec", "kms:KeyUsage", "kms:KeyOrigin",
    "kms:MultiRegion"))


def resource_key(key: str) -> bool:
    """Whether a condition key describes the resource acted on rather than the request."""
    key = key.lower()
    return "resourcetag/" in key or key in _RESOURCE_KEYS


def asked(service: str, prefix: str, operation: str, p: Params, where: Where) -> Asked:
    """The action, resources and condition keys of one request."""
    if service == "s3":  # S3's actions are not its operation names: domain/s3_actions.py
        return Asked(s3_actions.action(operation),
                     tuple(s3_actions.resources(operation, p)),
                     {**conditions(service, p, where), **s3_actions.conditions(operation, p)})
    action = f"{prefix}:{operation}"
    if service == "ec2":
        resources = EC2.get(operation, lambda p, w: [])(p, where)
    elif service == "ebs":
        resources = EBS.get(operation, lambda p, w: [])(p, where)
    elif service == "iam":
        resources = _iam(operation, p, where)
    elif service == "sts" and operation == "AssumeRole":
        resources = [p["RoleArn"]]
    elif service == "kms" and p.get("KeyId") and operation not in _KMS_NOT_ON_KEY:
        # The key named; the handler passes the key's own ARN (and its policy) once found.
        resources = [kms_key_arn(where, p["KeyId"])]
    else:
        resources = []
    return Asked(action, tuple(resources) or ("*",), conditions(service, p, where))
