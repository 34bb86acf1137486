"""Another account's snapshot or image as the resource side of an evaluation: its
createVolumePermission or launchPermission list, read as a resource policy
(domain/policy.permission_list), so a cross-account decision weighs both sides and its
encoded message says which one did not allow.

Handlers still answer NotFound for what is not shared with the caller (EC2 hides others'
resources); what they do find, the evaluator judges with its list.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from snapferry.domain.policy import ResourcePolicy, permission_list
from snapferry.storage import images as image_store
from snapferry.storage import snapshots as snapshot_store

# What a snapshot's createVolumePermission lets the named accounts do; everyone (group
# `all`, a public snapshot) gets the EC2 ones only: EBS direct reads need the account named.
SNAPSHOT_ACTIONS = ("ec2:CreateVolume", "ec2:CopySnapshot")
SNAPSHOT_ACCOUNT_ACTIONS = (*SNAPSHOT_ACTIONS, "ebs:ListSnapshotBlocks",
                            "ebs:ListChangedBlocks", "ebs:GetSnapshotBlock")
# What an image's launchPermission lets accounts do with it.
IMAGE_ACTIONS = ("ec2:RunInstances", "ec2:CopyImage", "ec2:GetImageAncestry")
SNAPSHOT_LIST, IMAGE_LIST = "createVolumePermission", "launchPermission"


def _as_policy(owner: str, grants: list[tuple[str, str]], actions: tuple[str, ...],
               account_actions: tuple[str, ...], name: str) -> ResourcePolicy:
    accounts = [grantee for kind, grantee in grants if kind == "user"]
    everyone = ("group", "all") in grants
    named = permission_list(owner, account_actions, accounts, name=name)
    public = permission_list(owner, actions, everyone=everyone, name=name)
    return ResourcePolicy(owner, named.statements + public.statements, name=name)


def resource_side(engine: Engine, arn: str, account_id: str) -> ResourcePolicy | None:
    """The permission list of the snapshot or image `arn` names, when another account owns
    it; None for the caller's own (its identity policies decide) or anything else."""
    _, _, rest = arn.partition("::")
    kind, _, resource_id = rest.partition("/")
    region = arn.split(":")[3] if arn.count(":") >= 5 else ""
    if kind not in ("snapshot", "image") or not resource_id or "*" in resource_id:
        return None
    with engine.connect() as conn:
        if kind == "snapshot":
            snapshot = snapshot_store.get_snapshot(conn, region, resource_id)
            if snapshot is None or snapshot.account_id == account_id:
                return None
            return _as_policy(snapshot.account_id,
                              snapshot_store.permissions(conn, resource_id),
                              SNAPSHOT_ACTIONS, SNAPSHOT_ACCOUNT_ACTIONS, SNAPSHOT_LIST)
        image = image_store.get_image(conn, region, resource_id)
        if image is None or image.account_id == account_id:
            return None
        return _as_policy(image.account_id, image_store.permissions(conn, resource_id),
                          IMAGE_ACTIONS, IMAGE_ACTIONS, IMAGE_LIST)
