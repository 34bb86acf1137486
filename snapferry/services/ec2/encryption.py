"""EBS encryption by default and the default EBS KMS key, per account and region."""

from __future__ import annotations

from typing import Any

from snapferry.domain.keys import EBS_ALIAS
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.storage import keys as store


def _set_default(ctx: RequestContext, enabled: bool) -> Output:
    ctx.authorize()
    with ctx.storage.engine.begin() as conn:
        store.set_ebs_encryption(conn, ctx.account_id, ctx.region, encryption_by_default=enabled)
    return {"EbsEncryptionByDefault": enabled}


def enable_ebs_encryption_by_default(ctx: RequestContext, params: dict[str, Any]) -> Output:
    return _set_default(ctx, True)


def disable_ebs_encryption_by_default(ctx: RequestContext, params: dict[str, Any]) -> Output:
    return _set_default(ctx, False)


def get_ebs_encryption_by_default(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        enabled, _ = store.ebs_encryption(conn, ctx.account_id, ctx.region)
    return {"EbsEncryptionByDefault": enabled, "SseType": "sse-ebs" if enabled else "none"}


def get_ebs_default_kms_key_id(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        _, chosen = store.ebs_encryption(conn, ctx.account_id, ctx.region)
    # Never modified: the AWS managed key, named as AWS shows it then.
    return {"KmsKeyId": chosen or EBS_ALIAS}


def modify_ebs_default_kms_key_id(ctx: RequestContext, params: dict[str, Any]) -> Output:
    assert ctx.keyring is not None
    with ctx.storage.engine.begin() as conn:
        try:
            key = ctx.keyring.resolve(conn, params["KmsKeyId"], ctx.account_id, ctx.region)
        except ServiceError as problem:
            raise ServiceError("InvalidParameterValue",
                               f"KmsKeyId '{params['KmsKeyId'][:256]}' names no usable KMS key "
                               f"in {ctx.region}: {problem.message}") from None
        ctx.authorize()
        store.set_ebs_encryption(conn, ctx.account_id, ctx.region, default_key_arn=key.arn)
    return {"KmsKeyId": key.arn}


def reset_ebs_default_kms_key_id(ctx: RequestContext, params: dict[str, Any]) -> Output:
    assert ctx.keyring is not None
    ctx.authorize()
    with ctx.storage.engine.begin() as conn:
        store.set_ebs_encryption(conn, ctx.account_id, ctx.region, default_key_arn=None)
        key = ctx.keyring.managed_ebs_key(conn, ctx.account_id, ctx.region)
    return {"KmsKeyId": key.arn}


HANDLERS = {
    "EnableEbsEncryptionByDefault": enable_ebs_encryption_by_default,
    "DisableEbsEncryptionByDefault": disable_ebs_encryption_by_default,
    "GetEbsEncryptionByDefault": get_ebs_encryption_by_default,
    "GetEbsDefaultKmsKeyId": get_ebs_default_kms_key_id,
    "ModifyEbsDefaultKmsKeyId": modify_ebs_default_kms_key_id,
    "ResetEbsDefaultKmsKeyId": reset_ebs_default_kms_key_id,
}
