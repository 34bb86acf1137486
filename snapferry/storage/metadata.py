"""The metadata database: schema, engine set-up, and migration on start.

SQLite (WAL) in the data dir by default; any SQLAlchemy URL (PostgreSQL) at scale. The
schema is SQLAlchemy Core tables; `migrate` creates what is missing and records the
version, and later versions add numbered steps to MIGRATIONS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection

from snapferry.wire.shapes import iso8601

SCHEMA_VERSION = 11


class IsoTime(TypeDecorator[dt.datetime]):
    """A UTC time stored as AWS writes it (`2026-11-22T19:30:05.123Z`): sortable as text,
    the same on every engine, and matched by EC2's wildcard time filters with LIKE."""

    impl = String(24)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> str | None:
        return iso8601(value) if value is not None else None

    def process_result_value(self, value: str | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        # fromisoformat reads the trailing Z as UTC (3.11+); strptime, which looks the locale
        # up on every call, took a third of an unpaged DescribeSnapshots.
        return dt.datetime.fromisoformat(value)
DATABASE_FILE = "metadata.sqlite3"

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("created_at", IsoTime(), nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("created_at", IsoTime(), nullable=False),
    # Since 6: an IAM user's key names its user (None: the account root's key); status
    # Active | Inactive (None: Active); when and where it was last used.
    Column("user_name", String(64)),
    Column("status", String(8)),
    Column("last_used_at", IsoTime()),
    Column("last_used_service", String(32)),
    Column("last_used_region", String(32)),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("snapshot_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("volume_id", String(32), nullable=False),
    Column("volume_size", Integer, nullable=False),  # GiB
    Column("state", String(16), nullable=False),  # pending | completed | error
    Column("progress", Integer, nullable=False),  # percent
    Column("state_message", Text),
    Column("start_time", IsoTime(), nullable=False),
    Column("completion_time", IsoTime()),
    Column("description", Text, nullable=False),
    Column("encrypted", Boolean, nullable=False),
    Column("kms_key_id", String(2048)),
    Column("lineage_id", String(64), nullable=False),  # DataEncryptionKeyId
    Column("parent_snapshot_id", String(32)),
    Column("origin", String(16), nullable=False),  # ebs-direct | volume | copy
    Column("full_size_bytes", BigInteger),
    Column("client_token", String(255)),
    Column("request_digest", String(64)),  # what the client token was first used for
    Column("timeout_minutes", Integer),  # EBS direct: cancel when idle this long
    Column("expires_at", IsoTime()),
    Column("transfer_type", String(16)),  # copies: standard | time-based
    Column("completion_duration_minutes", Integer),
    Index("snapshots_by_owner", "region", "account_id", "snapshot_id"),
    Index("snapshots_pending", "state", "expires_at"),
    # Since 10: ClientToken lookups are index seeks (a scan of the account's snapshots before).
    Index("snapshots_by_client_token", "account_id", "region", "client_token"),
)

volumes = Table(
    "volumes",
    metadata,
    Column("volume_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("availability_zone", String(40), nullable=False),
    Column("size", Integer, nullable=False),  # GiB
    Column("volume_type", String(16), nullable=False),
    Column("iops", Integer),
    Column("throughput", Integer),
    Column("snapshot_id", String(32), nullable=False),  # "" when created empty
    Column("state", String(16), nullable=False),
    Column("encrypted", Boolean, nullable=False),
    Column("kms_key_id", String(2048)),
    Column("lineage_id", String(64), nullable=False),
    Column("create_time", IsoTime(), nullable=False),
    Column("multi_attach", Boolean, nullable=False),
    Column("client_token", String(255)),
    Column("request_digest", String(64)),
    Index("volumes_by_owner", "region", "account_id", "volume_id"),
    Index("volumes_by_client_token", "account_id", "region", "client_token"),  # since 10
)

# The block maps of snapshots and volumes: one row per block that holds data.
# `written` marks blocks put into this snapshot itself (not inherited from a parent):
# CompleteSnapshot counts and checksums those.
manifests = Table(
    "manifests",
    metadata,
    Column("resource_id", String(32), primary_key=True),
    Column("block_index", Integer, primary_key=True),
    Column("block_id", String(64), nullable=False),
    Column("sha256", LargeBinary(32), nullable=False),
    Column("written", Boolean, nullable=False),
    Index("manifests_by_block", "block_id"),
)

# Every block object in the block store. A row exists before anything references the
# object, and the object is deleted only inside the transaction that deletes the row.
blocks = Table(
    "blocks",
    metadata,
    Column("block_id", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
)

# Writers' intents (version 2): a row committed BEFORE a block object is written, so the
# collector finds every object that may lack a `blocks` row through the database, never by
# listing the store. The writer deletes it in the transaction that creates the block row; one
# left older than a grace period marks an object a crashed writer may have left behind.
block_intents = Table(
    "block_intents",
    metadata,
    Column("block_id", String(64), primary_key=True),
    Column("written_at", IsoTime(), nullable=False),
    Index("block_intents_by_time", "written_at"),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Index("tags_by_owner", "region", "account_id", "resource_type"),
    # Since 10: a selective `tag:<key>` / `tag-key` filter finds its resources from the tag
    # side, in resource id order (storage/filtering.py tagged_ids).
    Index("tags_by_key_value", "region", "key", "value", "resource_id"),
)

# createVolumePermission: (snapshot, 'user', account id) or (snapshot, 'group', 'all').
snapshot_permissions = Table(
    "snapshot_permissions",
    metadata,
    Column("snapshot_id", String(32), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("grantee", String(12), primary_key=True),
    Index("permissions_by_grantee", "grantee"),
)

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("key_manager", String(10), nullable=False),
    Column("creation_date", IsoTime(), nullable=False),
    Column("policy", Text, nullable=False),
    Column("material_sealed", LargeBinary, nullable=False),  # under the master key
    Column("deletion_date", IsoTime()),
    Column("pending_window_days", Integer),
    Column("rotation_period_days", Integer),  # since 2; None: automatic rotation off
    Column("next_rotation_date", IsoTime()),  # since 2
    Index("kms_keys_by_owner", "region", "account_id", "key_id"),
)

kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("alias_name", String(256), primary_key=True),
    Column("key_id", String(36), nullable=False),
    Column("creation_date", IsoTime(), nullable=False),
    Column("last_updated_date", IsoTime(), nullable=False),
)

kms_grants = Table(
    "kms_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("key_id", String(36), nullable=False, index=True),
    Column("name", String(256)),
    Column("grantee", String(256), nullable=False),
    Column("retiring", String(256)),
    Column("operations", Text, nullable=False),  # comma-separated
    Column("constraints", Text),  # JSON
    Column("issuing_account", String(12), nullable=False),
    Column("creation_date", IsoTime(), nullable=False),
    Column("grant_token", String(256), nullable=False),
)

# EBS encryption by default, per account and region. No row: off, with alias/aws/ebs.
ebs_settings = Table(
    "ebs_settings",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("encryption_by_default", Boolean, nullable=False),
    Column("default_key_arn", String(2048)),  # None: the AWS managed key
)

# The data key of each encrypted lineage, wrapped by its KMS key (a KMS ciphertext blob).
lineage_keys = Table(
    "lineage_keys",
    metadata,
    Column("lineage_id", String(64), primary_key=True),
    Column("key_arn", String(2048), nullable=False),
    Column("wrapped_data_key", LargeBinary, nullable=False),
)

# One row per CopySnapshot: the durable job the engine's workers claim, checkpoint and
# finish. Written in the same transaction as the pending destination snapshot.
copy_jobs = Table(
    "copy_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    # The destination: a snapshot id, or for a bundle copy (kind `bundle`) the new image's id.
    Column("snapshot_id", String(32), nullable=False, unique=True),
    # None: a snapshot copy; `bundle`: an instance-store image's bundle (manifest and parts,
    # S3 objects) copied into the regional amis-for-... bucket (engine/bundle_copier.py).
    Column("kind", String(16)),
    Column("account_id", String(12), nullable=False),
    Column("access_key_id", String(128), nullable=False),  # whose permissions it runs with
    Column("dest_region", String(32), nullable=False),
    Column("source_region", String(32), nullable=False),
    Column("source_snapshot_id", String(32), nullable=False),
    Column("source_lineage_id", String(64), nullable=False),
    Column("encrypted", Boolean),  # as requested (None: not given)
    Column("kms_key_text", String(2048)),  # as requested, resolved when the job starts
    Column("presigned_url", Text),
    Column("destination_region_param", String(32)),
    Column("state", String(16), nullable=False),  # queued | running | completed | failed
    Column("message", Text),
    Column("mode", String(16)),  # full | incremental | shared, once planned
    Column("dest_lineage_id", String(64)),
    Column("dest_key_arn", String(2048)),
    # Incremental copies: the source of the previous copy, diffed against to find the
    # blocks that changed (the previous copy's block map is the starting point).
    Column("base_source_snapshot_id", String(32)),
    Column("cursor", Integer, nullable=False),  # next source block index to copy
    Column("blocks_total", Integer),
    Column("blocks_done", Integer, nullable=False),
    Column("bytes_moved", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires", IsoTime()),
    Column("fencing", Integer, nullable=False),
    Column("deadline", IsoTime()),  # time-based copies: finish by then
    Column("created_at", IsoTime(), nullable=False),
    Column("started_at", IsoTime()),
    Column("finished_at", IsoTime()),
    Index("copy_jobs_open", "state", "lease_expires"),
    Index("copy_jobs_by_lineage", "source_lineage_id", "account_id", "dest_region"),
)

# Machine images (AMIs). A deregistered image keeps its row (state `deregistered`), so a
# second DeregisterImage is told so and GetImageAncestry still finds it as the source of
# its copies; it is gone from every Describe. The columns a CopyImage target needs are
# here already: `pending` state with a reason, its source, and the image copy job.
images = Table(
    "images",
    metadata,
    Column("image_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text),
    Column("state", String(16), nullable=False),  # pending | available | failed | deregistered
    Column("state_reason_code", String(64)),
    Column("state_reason_message", Text),
    Column("creation_date", IsoTime(), nullable=False),
    Column("image_location", String(1024), nullable=False),
    Column("owner_alias", String(32)),  # amazon ... for operator-imported images; else None
    Column("image_type", String(16), nullable=False),  # machine
    Column("architecture", String(16), nullable=False),
    Column("virtualization_type", String(16), nullable=False),
    Column("root_device_name", String(64), nullable=False),
    Column("root_device_type", String(16), nullable=False),  # ebs
    Column("ena_support", Boolean),
    Column("sriov_net_support", String(16)),
    Column("boot_mode", String(16)),
    Column("tpm_support", String(8)),
    Column("imds_support", String(8)),
    Column("uefi_data", Text),
    Column("kernel_id", String(32)),
    Column("ramdisk_id", String(32)),
    Column("source_image_id", String(32)),  # copies: the image copied, and its region
    Column("source_image_region", String(32)),
    Column("copy_job_id", String(36)),  # copies: the parent job of its snapshot copies
    Column("client_token", String(255)),
    Column("request_digest", String(64)),
    Column("deprecation_time", IsoTime()),
    Column("deregistration_protection", String(32), nullable=False),
    Column("protected_until", IsoTime()),  # after a disable with cooldown
    Column("deregistered_at", IsoTime()),
    Index("images_by_owner", "region", "account_id", "image_id"),
    Index("images_by_client_token", "account_id", "region", "client_token"),  # since 10
    # A name is unique per account and region among the images not deregistered.
    Index("images_live_name", "account_id", "region", "name", unique=True,
          sqlite_where=text("state != 'deregistered'"),
          postgresql_where=text("state != 'deregistered'")),
)

# An image's block device mappings, in the order given. Kept after deregistration (the
# image's history); `InvalidSnapshot.InUse` counts only images not deregistered.
image_block_devices = Table(
    "image_block_devices",
    metadata,
    Column("image_id", String(32), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("device_name", String(64), nullable=False),
    Column("snapshot_id", String(32)),  # None: an empty volume, ephemeral or NoDevice
    Column("volume_size", Integer),
    Column("volume_type", String(16)),
    Column("delete_on_termination", Boolean),
    Column("encrypted", Boolean),
    Column("kms_key_id", String(2048)),
    Column("iops", Integer),
    Column("throughput", Integer),
    Column("virtual_name", String(32)),
    Column("no_device", Boolean, nullable=False),
    Index("image_block_devices_by_snapshot", "snapshot_id"),
)

# launchPermission: (image, kind, grantee) with kind user (account id), group (all),
# organization (an organization ARN) or ou (an organizational unit ARN).
image_permissions = Table(
    "image_permissions",
    metadata,
    Column("image_id", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("grantee", String(256), primary_key=True),
    Index("image_permissions_by_grantee", "grantee"),
)

# Product codes of images: only operators set them (`snapferry images product-code`); a
# copy made by the image's own account keeps them, and another account's image with a
# `marketplace` code cannot be copied.
image_product_codes = Table(
    "image_product_codes",
    metadata,
    Column("image_id", String(32), primary_key=True),
    Column("product_code", String(64), primary_key=True),
    Column("product_code_type", String(16), nullable=False),  # marketplace | devpay
)


# Operator fault rules (domain/faults.py), read by every process at each request and copy
# checkpoint, so a change applies while running.
fault_rules = Table(
    "fault_rules",
    metadata,
    Column("rule_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # copy | throttle
    Column("region", String(32)),
    Column("account_id", String(12)),
    Column("resource_id", String(32)),
    Column("service", String(16)),
    Column("operation", String(64)),
    Column("fail_at", Float),
    Column("message", Text),
    Column("seconds_per_gib", Float),
    Column("fraction", Float, nullable=False),
    Column("remaining", Integer),  # decremented atomically by each call it throttles
    Column("created_at", IsoTime(), nullable=False),
)

# Event counts every process adds to (Prometheus counters that outlive a process), e.g.
# lease takeovers by copy workers.
event_counts = Table(
    "event_counts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# ---- S3: buckets, objects, multipart uploads (bodies are files: storage/objectfiles.py) ----

s3_buckets = Table(
    "s3_buckets",
    metadata,
    Column("name", String(63), primary_key=True),  # one namespace for every account
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("created_at", IsoTime(), nullable=False),
    Column("ownership", String(32), nullable=False),  # ObjectOwnership
    Column("acl", Text, nullable=False),  # JSON list of grants
    Column("policy", Text),  # the bucket policy as given
)

s3_objects = Table(
    "s3_objects",
    metadata,
    Column("bucket", String(63), ForeignKey("s3_buckets.name"), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("file_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("last_modified", IsoTime(), nullable=False),
    Column("owner", String(12), nullable=False),
    Column("headers", Text, nullable=False),  # JSON: Content-Type, user metadata, ...
    Column("checksums", Text, nullable=False),  # JSON: algorithm -> value
    Column("parts", Integer),  # parts of a multipart object
    Column("acl", Text, nullable=False),
)

s3_uploads = Table(
    "s3_uploads",
    metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("bucket", String(63), ForeignKey("s3_buckets.name"), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("account_id", String(12), nullable=False),
    Column("initiated", IsoTime(), nullable=False),
    Column("headers", Text, nullable=False),
    Column("acl", Text, nullable=False),
    Column("checksum_algorithm", String(16)),
    Index("s3_uploads_by_bucket", "bucket", "key"),
)

s3_parts = Table(
    "s3_parts",
    metadata,
    Column("upload_id", String(64), ForeignKey("s3_uploads.upload_id"), primary_key=True),
    Column("part_number", Integer, primary_key=True),
    Column("file_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("last_modified", IsoTime(), nullable=False),
    Column("checksums", Text, nullable=False),
)


# The time-based copy throughput of each source/destination region pair, shared by every
# worker process (storage/rates.py): the time, in seconds since the epoch, at which the
# bytes moved so far are paid for at the pair's rate.
pair_rates = Table(
    "pair_rates",
    metadata,
    Column("source_region", String(32), primary_key=True),
    Column("dest_region", String(32), primary_key=True),
    Column("paid_until", Float, nullable=False),
)


# ---- IAM (version 6): users, groups, roles, policies; keyed by account, no region ----------

iam_users = Table(
    "iam_users",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("created_at", IsoTime(), nullable=False),
)

iam_groups = Table(
    "iam_groups",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("group_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("created_at", IsoTime(), nullable=False),
)

iam_group_members = Table(
    "iam_group_members",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("group_name", String(128), primary_key=True),
    Column("user_name", String(64), primary_key=True),
)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("trust_policy", Text, nullable=False),
    Column("max_session", Integer, nullable=False),
    Column("description", Text),
    Column("created_at", IsoTime(), nullable=False),
)

# Inline policies of users, groups and roles: kind is user | group | role.
iam_inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

# Customer managed policies; AWS managed ones live in domain/managed_policies.py.
iam_policies = Table(
    "iam_policies",
    metadata,
    Column("arn", String(2048), primary_key=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("policy_id", String(32), nullable=False),
    Column("path", String(512), nullable=False),
    Column("description", Text),
    Column("default_version", String(8), nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("created_at", IsoTime(), nullable=False),
    Column("updated_at", IsoTime(), nullable=False),
)

iam_policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column("policy_arn", String(2048), primary_key=True),
    Column("version_id", String(8), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", IsoTime(), nullable=False),
)

iam_attachments = Table(
    "iam_attachments",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("policy_arn", String(2048), primary_key=True),
    Index("iam_attachments_by_policy", "policy_arn"),
)

# Tags of users and roles (kind user | role).
iam_tags = Table(
    "iam_tags",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

# STS temporary credentials: the key id, its sealed secret, a digest of its session token,
# whom it acts as and until when.
sts_sessions = Table(
    "sts_sessions",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("token_digest", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # assumed-role | user | root
    Column("name", String(64)),  # the role's or the user's name
    Column("session_name", String(64)),
    Column("session_policies", Text),  # JSON list of documents; None: none given
    Column("session_tags", Text),  # JSON object
    Column("created_at", IsoTime(), nullable=False),
    Column("expires_at", IsoTime(), nullable=False, index=True),
)

IAM_TABLES = (iam_users, iam_groups, iam_group_members, iam_roles, iam_inline_policies,
              iam_policies, iam_policy_versions, iam_attachments, iam_tags, sts_sessions)


def _add_images(conn: Connection) -> None:
    """Version 2: machine images, their block device mappings and launch permissions."""
    for table in (images, image_block_devices, image_permissions):
        table.create(conn, checkfirst=True)


def _add_block_intents(conn: Connection) -> None:
    """Version 3: the writers' intents (orphan collection without listing the store).
    Objects an older version's crash left without a row are not found by this protocol; they
    cost space, never data (`snapferry` never reads an object without a row)."""
    block_intents.create(conn, checkfirst=True)


def _add_key_rotation(conn: Connection) -> None:
    """Version 4: KMS automatic rotation state; every existing key starts with rotation off."""
    present = {column["name"] for column in inspect(conn).get_columns("kms_keys")}
    for name, kind in (("rotation_period_days", "INTEGER"),
                       ("next_rotation_date", "VARCHAR(24)")):
        if name not in present:  # a step may run again harmlessly
            conn.execute(text(f"ALTER TABLE kms_keys ADD COLUMN {name} {kind}"))


def _add_fault_rules(conn: Connection) -> None:
    """Version 5: operator fault rules and the shared event counters (metrics)."""
    for table in (fault_rules, event_counts):
        table.create(conn, checkfirst=True)


def _add_image_product_codes(conn: Connection) -> None:
    """Version 6: product codes of images (operator-set; Marketplace copy rules)."""
    image_product_codes.create(conn, checkfirst=True)


def _add_s3(conn: Connection) -> None:
    """Version 7: S3 buckets, objects and multipart uploads (re-runnable: checkfirst)."""
    for table in (s3_buckets, s3_objects, s3_uploads, s3_parts):
        table.create(conn, checkfirst=True)


def _add_pair_rates(conn: Connection) -> None:
    """Version 8 (scale-out): the region-pair throughput cap, held in the database so it
    holds across worker processes."""
    pair_rates.create(conn, checkfirst=True)


def _add_iam(conn: Connection) -> None:
    """Version 9: IAM users, groups, roles and policies, STS sessions; access keys learn
    their user, status and last use (existing keys are account roots' and Active)."""
    for table in IAM_TABLES:
        table.create(conn, checkfirst=True)
    present = {column["name"] for column in inspect(conn).get_columns("access_keys")}
    for name, kind in (("user_name", "VARCHAR(64)"), ("status", "VARCHAR(8)"),
                       ("last_used_at", "VARCHAR(24)"), ("last_used_service", "VARCHAR(32)"),
                       ("last_used_region", "VARCHAR(32)")):
        if name not in present:  # a step may run again harmlessly
            conn.execute(text(f"ALTER TABLE access_keys ADD COLUMN {name} {kind}"))


def _add_copy_kinds(conn: Connection) -> None:
    """Version 10: copy jobs have a kind (NULL: a snapshot copy; `bundle`: the objects of an
    instance-store image copy)."""
    present = {column["name"] for column in inspect(conn).get_columns("copy_jobs")}
    if "kind" not in present:  # a step may run again harmlessly
        conn.execute(text("ALTER TABLE copy_jobs ADD COLUMN kind VARCHAR(16)"))


def _add_lookup_indexes(conn: Connection) -> None:
    """Version 11: indexes that make costs independent of the store's size: ClientToken
    lookups of snapshots, volumes and images, and tags by key and value. Re-runnable:
    checkfirst skips an index already there (a fresh schema has them from create_all)."""
    for table, name in ((snapshots, "snapshots_by_client_token"),
                        (volumes, "volumes_by_client_token"),
                        (images, "images_by_client_token"),
                        (tags, "tags_by_key_value")):
        next(index for index in table.indexes if index.name == name).create(conn,
                                                                            checkfirst=True)


# version -> step run inside the migration transaction to reach it from the one before.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_images,
    3: _add_block_intents,
    4: _add_key_rotation,
    5: _add_fault_rules,
    6: _add_image_product_codes,
    7: _add_s3,
    8: _add_pair_rates,
    9: _add_iam,
    10: _add_copy_kinds,
    11: _add_lookup_indexes,
}


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # EC2 filter values are case-sensitive; so must LIKE be, as it is on PostgreSQL.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # READ COMMITTED (PostgreSQL's default): the rules that need more lock what they read
    # (serialize(), lock_blocks, FOR UPDATE/SHARE). pre_ping: a restarted server's dead
    # connections are replaced before use instead of failing a request.
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=24,
                         pool_recycle=3600)


# PostgreSQL advisory-lock keys (any fixed numbers, unique among snapferry's locks).
_MIGRATION_LOCK = 0x5F_4D_49_47


def serialize(conn: Connection, *names: str) -> None:
    """Hold a lock named by `names` until the transaction ends, so read-then-write rules
    (a quota count before an insert) run one at a time across processes. PostgreSQL: a
    transaction-level advisory lock. SQLite: nothing to do, one writer at a time already
    holds the whole database."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                     {"name": "\x1f".join(names)})


def migrate(engine: Engine, seed: Callable[[Connection], None]) -> None:
    """Bring the schema to SCHEMA_VERSION; `seed` runs once, when the schema is first made.
    Every process migrates at start; on PostgreSQL they take turns (an advisory lock), and
    the DDL is transactional, so a crash mid-migration leaves the old version whole."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        else:
            # SQLite: the database's write lock before the first CREATE (the driver begins
            # no transaction for DDL by itself); a `serve` and a `worker` starting together
            # on a fresh data dir then take turns (busy_timeout) instead of failing.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(conn)
        current = conn.execute(select(schema_version.c.version)).scalar()
        if current is None:
            seed(conn)
            conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            return
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        if current < SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def insert_ignoring_conflict(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """INSERT that leaves an existing row with the same key alone (racing inserters agree)."""
    conn.execute(_dialect_insert(conn, table).values(**values).on_conflict_do_nothing())


def upsert(conn: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """INSERT, or UPDATE the row with the same `keys`: one statement, which also takes the
    row's write lock when it exists (SQLite and PostgreSQL alike)."""
    if not rows:
        return
    shape = (conn.dialect.name, table.name, tuple(keys), tuple(rows[0]))
    statement = _UPSERTS.get(shape)
    if statement is None:  # built once per shape: building `excluded` costs more than the run
        insert_ = _dialect_insert(conn, table)
        updated = {name: insert_.excluded[name] for name in rows[0] if name not in keys}
        statement = insert_.on_conflict_do_update(index_elements=keys, set_=updated)
        _UPSERTS[shape] = statement
    conn.execute(statement, rows)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}
