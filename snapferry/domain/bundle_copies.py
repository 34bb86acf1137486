"""CopyImage of an instance-store image: its bundle (the manifest and its parts, S3 objects)
is copied into one bucket per account and destination region,
`amis-for-<account>-in-<region>-<hash>`, made by the first such copy and reused by every
later one. The new image's ImageLocation is the manifest's copy there.

What the caller needs (copy-ami-permissions): s3:ListAllMyBuckets (to find the bucket),
s3:CreateBucket and s3:PutBucketOwnershipControls (the first time, to make it with ACLs on),
s3:GetBucketAcl and s3:GetObject on the source, s3:PutObject and s3:PutObjectAcl on the
target. The bucket-level ones are checked when CopyImage is called (it creates the bucket
then); the object-level ones by the copy engine as it reads and writes each object, where a
refusal ends the copy `failed` with the reason in StateReason.

Key layout (AWS's is not documented): `<new image id>/<source file name>`, so copies of the
same bundle never overwrite each other and a stopped copy's objects are found by prefix.
Parts are copied first and the manifest last: the manifest is there only when every part is.
"""

from __future__ import annotations

import hashlib
import string

from snapferry.errors import ServiceError

_ALPHABET = string.ascii_lowercase + string.digits
HASH_LENGTH = 8
BUCKET_ACL = "aws-exec-read"  # EC2 may read the bundle (canned ACL, bucket and objects)
OWNERSHIP = "ObjectWriter"  # ACLs on, so the objects can carry aws-exec-read
COPY_ACTIONS_AT_REQUEST = ("s3:ListAllMyBuckets", "s3:GetBucketAcl", "s3:GetObject")
CREATE_ACTIONS = ("s3:CreateBucket", "s3:PutBucketOwnershipControls")


def regional_bucket(account_id: str, region: str) -> str:
    """The account's bucket for instance-store image copies into `region`: the same name
    every time (a hash of account and region, 8 lowercase letters and digits)."""
    digest = int.from_bytes(hashlib.sha256(f"amis-for {account_id} {region}".encode()).digest(),
                            "big")
    suffix = ""
    for _ in range(HASH_LENGTH):
        digest, index = divmod(digest, len(_ALPHABET))
        suffix += _ALPHABET[index]
    return f"amis-for-{account_id}-in-{region}-{suffix}"


def target_key(image_id: str, filename: str) -> str:
    return f"{image_id}/{filename}"


def file_names(manifest_name: str, part_names: list[str]) -> list[str]:
    """The order the files are copied in: parts, then the manifest."""
    return [*part_names, manifest_name]


def no_encryption_change(image_id: str) -> ServiceError:
    """AWS: encryption cannot change when copying an instance-store image."""
    return ServiceError("InvalidParameterCombination",
                        f"{image_id} is an instance-store image: its copy cannot be encrypted "
                        "(Encrypted and KmsKeyId apply to EBS-backed images only). Leave them "
                        "out.")


def bucket_taken(name: str) -> ServiceError:
    return ServiceError("InvalidRequest",
                        f"The bucket {name} for instance-store image copies into this region "
                        "is owned by another account; snapferry cannot copy the bundle.")


def refused(action: str, arn: str, principal_arn: str) -> str:
    """The StateReason of a copy the engine could not carry on with."""
    return (f"User: {principal_arn} is not authorized to perform: {action} on resource: "
            f"{arn}")
