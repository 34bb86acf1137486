"""KMS (TrentService): symmetric keys with real AES-256-GCM, aliases, key policies, grants.

Every operation on a key finds it by the names AWS allows for that operation, then asks
the key's policy (and grants) whether the caller may; see domain/policy.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from typing import Any

from sqlalchemy.engine import Connection

from snapferry.domain import envelope
from snapferry.domain import keys as rules
from snapferry.domain.keys import Key
from snapferry.domain.policy import key_policy, policy_allows
from snapferry.errors import ServiceError
from snapferry.services.context import First, Output, RequestContext, Service
from snapferry.storage import keys as store
from snapferry.storage.tagstore import delete_tags, set_tags, tags_of

GRANT_OPERATIONS = frozenset({
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GetPublicKey", "GenerateMac",
    "VerifyMac", "DeriveSharedSecret",
})
ALGORITHMS = [rules.ALGORITHM]


def key_metadata(key: Key) -> Output:
    output: Output = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.enabled,
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.state,
        "Origin": "AWS_KMS",
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": rules.SYMMETRIC,
        "KeySpec": rules.SYMMETRIC,
        "EncryptionAlgorithms": ALGORITHMS,
        "MultiRegion": False,
    }
    if key.deletion_date is not None:
        output["DeletionDate"] = key.deletion_date
        output["PendingDeletionWindowInDays"] = key.pending_window_days
    return output


def _keyring(ctx: RequestContext) -> Any:
    return ctx.keyring


def _find(ctx: RequestContext, conn: Connection, text: str, aliases: bool = True) -> Key:
    return _keyring(ctx).resolve(conn, text, ctx.account_id, ctx.region, aliases)


def _authorize(ctx: RequestContext, conn: Connection, key: Key, operation: str | None = None,
               encryption_context: dict[str, str] | None = None) -> None:
    ctx.authorize(
        resources=[key.arn],
        context={"resource_policy": _keyring(ctx).policy(conn, key),
                 "encryption_context": encryption_context or {}},
        action=f"kms:{operation or ctx.operation}",
    )


def _own(ctx: RequestContext, key: Key) -> None:
    """Management of a key is for its own account, whatever its policy says to others."""
    if key.account_id != ctx.account_id:
        raise rules.key_not_found(key.arn)


def _check_policy(ctx: RequestContext, text: str, bypass: bool) -> None:
    policy = key_policy(ctx.account_id, text)  # MalformedPolicyDocumentException if not one
    if bypass:
        return
    if not policy_allows(policy, ctx.principal, "kms:PutKeyPolicy"):
        raise ServiceError("MalformedPolicyDocumentException",
                           "The new key policy will not allow you to update the key policy in "
                           "the future (set BypassPolicyLockoutSafetyCheck to do it anyway).")


def create_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    if params.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        raise ServiceError("UnsupportedOperationException",
                           "snapferry's KMS makes ENCRYPT_DECRYPT keys only.")
    spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or rules.SYMMETRIC
    if spec != rules.SYMMETRIC:
        raise ServiceError("UnsupportedOperationException",
                           f"snapferry's KMS makes symmetric keys only, not {spec}.")
    if params.get("Origin", "AWS_KMS") != "AWS_KMS" or params.get("MultiRegion"):
        raise ServiceError("UnsupportedOperationException",
                           "snapferry's KMS makes single-region keys of origin AWS_KMS only.")
    tags = _tags(params.get("Tags"))
    ctx.authorize()  # kms:CreateKey is IAM's to allow: there is no key policy yet
    policy = params.get("Policy") or rules.default_policy(ctx.account_id)
    # The lockout check is for a policy the caller wrote; the default one delegates to IAM.
    _check_policy(ctx, policy, bool(params.get("BypassPolicyLockoutSafetyCheck"))
                  or not params.get("Policy"))
    with ctx.storage.engine.begin() as conn:
        key = _keyring(ctx).new_key(conn, ctx.account_id, ctx.region,
                                    params.get("Description", ""), policy)
        set_tags(conn, key.key_id, "kms-key", ctx.account_id, ctx.region, tags)
    return {"KeyMetadata": key_metadata(key)}


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    tags = {}
    for item in items or ():
        if item["TagKey"].startswith("aws:"):
            raise ServiceError("TagException", "Tag keys beginning with aws: are reserved.")
        tags[item["TagKey"]] = item["TagValue"]
    return tags


def describe_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:  # begin: alias/aws/ebs may be created here
        key = _find(ctx, conn, params["KeyId"])
        _authorize(ctx, conn, key)
    return {"KeyMetadata": key_metadata(key)}


def _limit(params: dict[str, Any], default: int = 100, high: int = 1000) -> int:
    return min(params.get("Limit") or default, high)


def list_keys(ctx: RequestContext, params: dict[str, Any]) -> Output:
    limit = _limit(params)
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        found = store.list_keys(conn, ctx.account_id, ctx.region, params.get("Marker"), limit)
    output: Output = {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in found[:limit]],
                      "Truncated": len(found) > limit}
    if len(found) > limit:
        output["NextMarker"] = found[limit - 1].key_id
    return output


def _alias_target(ctx: RequestContext, conn: Connection, params: dict[str, Any]) -> Key:
    rules.check_alias_name(params["AliasName"])
    key = _find(ctx, conn, params["TargetKeyId"], aliases=False)
    _own(ctx, key)
    rules.check_customer_managed(key, "An alias")
    if key.state == rules.PENDING_DELETION:
        raise ServiceError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    return key


def create_alias(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _alias_target(ctx, conn, params)
        if store.alias_target(conn, ctx.account_id, ctx.region, params["AliasName"]):
            raise ServiceError("AlreadyExistsException", f"An alias with the name "
                               f"{rules.alias_arn(ctx.region, ctx.account_id, params['AliasName'])}"
                               " already exists")
        _authorize(ctx, conn, key)
        store.put_alias(conn, ctx.account_id, ctx.region, params["AliasName"], key.key_id,
                        ctx.clock.now(), create=True)
    return {}


def update_alias(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _alias_target(ctx, conn, params)
        if not store.alias_target(conn, ctx.account_id, ctx.region, params["AliasName"]):
            raise rules.alias_not_found(rules.alias_arn(ctx.region, ctx.account_id,
                                                        params["AliasName"]))
        _authorize(ctx, conn, key)
        store.put_alias(conn, ctx.account_id, ctx.region, params["AliasName"], key.key_id,
                        ctx.clock.now(), create=False)
    return {}


def delete_alias(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = params["AliasName"]
    rules.check_alias_name(name)
    with ctx.storage.engine.begin() as conn:
        key_id = store.alias_target(conn, ctx.account_id, ctx.region, name)
        if key_id is None:
            raise rules.alias_not_found(rules.alias_arn(ctx.region, ctx.account_id, name))
        key = store.get_key(conn, key_id)
        assert key is not None
        _authorize(ctx, conn, key)
        store.delete_alias(conn, ctx.account_id, ctx.region, name)
    return {}


def list_aliases(ctx: RequestContext, params: dict[str, Any]) -> Output:
    limit = _limit(params, default=50, high=100)
    with ctx.storage.engine.connect() as conn:
        key_id = None
        if params.get("KeyId"):
            key = _find(ctx, conn, params["KeyId"], aliases=False)
            _own(ctx, key)
            key_id = key.key_id
        ctx.authorize()
        rows = store.list_aliases(conn, ctx.account_id, ctx.region, key_id)
    marker = params.get("Marker")
    if marker:
        rows = [row for row in rows if row.alias_name > marker]
    page = rows[:limit]
    output: Output = {"Aliases": [
        {"AliasName": r.alias_name, "AliasArn": rules.alias_arn(ctx.region, ctx.account_id,
                                                                 r.alias_name),
         "TargetKeyId": r.key_id, "CreationDate": r.creation_date,
         "LastUpdatedDate": r.last_updated_date} for r in page],
        "Truncated": len(rows) > limit}
    if len(rows) > limit:
        output["NextMarker"] = page[-1].alias_name
    return output


def _set_state(ctx: RequestContext, params: dict[str, Any], state: str) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        rules.check_customer_managed(key, f"{ctx.operation}")
        if key.state == rules.PENDING_DELETION:
            raise ServiceError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        _authorize(ctx, conn, key)
        store.update_key(conn, key.key_id, state=state)
    return {}


def enable_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    return _set_state(ctx, params, rules.ENABLED)


def disable_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    return _set_state(ctx, params, rules.DISABLED)


def schedule_key_deletion(ctx: RequestContext, params: dict[str, Any]) -> Output:
    days = params.get("PendingWindowInDays", rules.DELETION_WINDOW[1])
    low, high = rules.DELETION_WINDOW
    if not low <= days <= high:
        raise ServiceError("ValidationException",
                           f"PendingWindowInDays must be from {low} to {high}; {days} given.")
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        rules.check_customer_managed(key, "Deletion")
        if key.state == rules.PENDING_DELETION:
            raise ServiceError("KMSInvalidStateException",
                               f"{key.arn} is already pending deletion.")
        _authorize(ctx, conn, key)
        deletion = ctx.clock.now() + dt.timedelta(days=days)
        store.update_key(conn, key.key_id, state=rules.PENDING_DELETION, deletion_date=deletion,
                         pending_window_days=days)
    return {"KeyId": key.arn, "DeletionDate": deletion, "KeyState": rules.PENDING_DELETION,
            "PendingWindowInDays": days}


def cancel_key_deletion(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        if key.state != rules.PENDING_DELETION:
            raise ServiceError("KMSInvalidStateException",
                               f"{key.arn} is not pending deletion.")
        _authorize(ctx, conn, key)
        # As on AWS, a key whose deletion is cancelled comes back disabled.
        store.update_key(conn, key.key_id, state=rules.DISABLED, deletion_date=None,
                         pending_window_days=None)
    return {"KeyId": key.arn}


def _policy_name(params: dict[str, Any]) -> None:
    if params.get("PolicyName", "default") != "default":
        raise ServiceError("NotFoundException", "The only key policy name is 'default'.")


def get_key_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _policy_name(params)
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _authorize(ctx, conn, key)
    return {"Policy": key.policy, "PolicyName": "default"}


def put_key_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _policy_name(params)
    _check_policy(ctx, params["Policy"], bool(params.get("BypassPolicyLockoutSafetyCheck")))
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        rules.check_customer_managed(key, "Changing the key policy")
        _authorize(ctx, conn, key)
        store.update_key(conn, key.key_id, policy=params["Policy"])
    return {}


def get_key_rotation_status(ctx: RequestContext, params: dict[str, Any]) -> Output:
    # Cross-account use is allowed (by key ARN), so no _own check: the policy decides.
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _authorize(ctx, conn, key)
    status = rules.rotation_status(key, ctx.clock.now())
    output: Output = {"KeyRotationEnabled": status.enabled, "KeyId": key.arn}
    if status.enabled:
        output["RotationPeriodInDays"] = status.period_days
        output["NextRotationDate"] = status.next_date
    return output


def enable_key_rotation(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        period, next_date = rules.enabled_rotation(key, params.get("RotationPeriodInDays"),
                                                   ctx.clock.now())
        _authorize(ctx, conn, key)
        store.update_key(conn, key.key_id, rotation_period_days=period,
                         next_rotation_date=next_date)
    return {}


def disable_key_rotation(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        rules.check_rotation_change(key)
        _authorize(ctx, conn, key)
        store.update_key(conn, key.key_id, rotation_period_days=None, next_rotation_date=None)
    return {}


def create_grant(ctx: RequestContext, params: dict[str, Any]) -> Output:
    operations = params["Operations"]
    unknown = set(operations) - GRANT_OPERATIONS
    if not operations or unknown:
        raise ServiceError("ValidationException",
                           f"Unknown grant operations: {', '.join(sorted(unknown)) or 'none'}.")
    grantee = params.get("GranteePrincipal")
    if not grantee:
        raise ServiceError("ValidationException", "A grant needs a GranteePrincipal.")
    constraints = params.get("Constraints")
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _authorize(ctx, conn, key)
        grant_id = secrets.token_hex(32)
        token = secrets.token_urlsafe(48)
        store.insert_grant(conn, grant_id=grant_id, key_id=key.key_id, name=params.get("Name"),
                           grantee=grantee, retiring=params.get("RetiringPrincipal"),
                           operations=",".join(sorted(set(operations))),
                           constraints=json.dumps(constraints) if constraints else None,
                           issuing_account=ctx.account_id, creation_date=ctx.clock.now(),
                           grant_token=token)
    return {"GrantId": grant_id, "GrantToken": token}


def list_grants(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _authorize(ctx, conn, key)
        rows = store.grant_rows(conn, key.key_id)
    if params.get("GrantId"):
        rows = [r for r in rows if r.grant_id == params["GrantId"]]
    if params.get("GranteePrincipal"):
        rows = [r for r in rows if r.grantee == params["GranteePrincipal"]]
    grants = []
    for row in rows:
        entry: Output = {"KeyId": key.arn, "GrantId": row.grant_id, "CreationDate":
                         row.creation_date, "GranteePrincipal": row.grantee,
                         "IssuingAccount": f"arn:aws:iam::{row.issuing_account}:root",
                         "Operations": row.operations.split(",")}
        if row.name:
            entry["Name"] = row.name
        if row.retiring:
            entry["RetiringPrincipal"] = row.retiring
        if row.constraints:
            entry["Constraints"] = json.loads(row.constraints)
        grants.append(entry)
    return {"Grants": grants, "Truncated": False}


def retire_grant(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        if params.get("GrantToken"):
            row = store.grant_by_token(conn, params["GrantToken"])
            if row is None:
                raise ServiceError("InvalidGrantTokenException", "The grant token is not valid.")
        else:
            if not (params.get("KeyId") and params.get("GrantId")):
                raise ServiceError("ValidationException",
                                   "Give a GrantToken, or a KeyId and a GrantId.")
            key = _find(ctx, conn, params["KeyId"], aliases=False)
            rows = [r for r in store.grant_rows(conn, key.key_id)
                    if r.grant_id == params["GrantId"]]
            if not rows:
                raise ServiceError("NotFoundException", f"Grant '{params['GrantId']}' does not "
                                   "exist.")
            row = rows[0]
        caller = {ctx.account_id, ctx.principal.arn}
        if not caller & {row.retiring, row.grantee, row.issuing_account}:
            raise ServiceError("AccessDeniedException",
                               "Only the retiring principal, the grantee or the account that "
                               "issued a grant may retire it.")
        ctx.authorize(action="kms:RetireGrant")
        store.delete_grant(conn, row.key_id, row.grant_id)
    return {}


def revoke_grant(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _authorize(ctx, conn, key)
        if not store.delete_grant(conn, key.key_id, params["GrantId"]):
            raise ServiceError("NotFoundException", f"Grant '{params['GrantId']}' does not exist.")
    return {}


def _algorithm(params: dict[str, Any], name: str = "EncryptionAlgorithm") -> None:
    if params.get(name, rules.ALGORITHM) != rules.ALGORITHM:
        raise ServiceError("InvalidKeyUsageException",
                           f"{name} {params[name]} does not fit a symmetric key.")


def encrypt(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _algorithm(params)
    context = params.get("EncryptionContext") or {}
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"])
        _authorize(ctx, conn, key, encryption_context=context)
        blob = _keyring(ctx).encrypt(key, params["Plaintext"], context)
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": rules.ALGORITHM}


def _blob_key(ctx: RequestContext, conn: Connection, blob: bytes, named: str | None) -> Key:
    key_id = envelope.blob_key_id(blob)
    key = store.get_key(conn, key_id)
    if key is None or key.region != ctx.region:
        raise envelope.invalid_ciphertext()
    if named is not None and _find(ctx, conn, named).key_id != key.key_id:
        raise ServiceError("IncorrectKeyException",
                           "The ciphertext was not encrypted under the KMS key you named.")
    return key


def decrypt(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _algorithm(params)
    if "CiphertextBlob" not in params:
        raise ServiceError("ValidationException", "Decrypt needs a CiphertextBlob.")
    context = params.get("EncryptionContext") or {}
    with ctx.storage.engine.connect() as conn:
        key = _blob_key(ctx, conn, params["CiphertextBlob"], params.get("KeyId"))
        _authorize(ctx, conn, key, encryption_context=context)
        plaintext = _keyring(ctx).decrypt(key, params["CiphertextBlob"], context)
    return {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": rules.ALGORITHM}


def re_encrypt(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _algorithm(params, "SourceEncryptionAlgorithm")
    _algorithm(params, "DestinationEncryptionAlgorithm")
    if "CiphertextBlob" not in params:
        raise ServiceError("ValidationException", "ReEncrypt needs a CiphertextBlob.")
    source_context = params.get("SourceEncryptionContext") or {}
    target_context = params.get("DestinationEncryptionContext") or {}
    with ctx.storage.engine.begin() as conn:
        source = _blob_key(ctx, conn, params["CiphertextBlob"], params.get("SourceKeyId"))
        target = _find(ctx, conn, params["DestinationKeyId"])
        keyring = _keyring(ctx)
        if not keyring.may(conn, ctx.principal, source, "ReEncryptFrom", source_context):
            raise _kms_denied(ctx, "kms:ReEncryptFrom", source)
        _authorize(ctx, conn, target, "ReEncryptTo", target_context)
        plaintext = keyring.decrypt(source, params["CiphertextBlob"], source_context)
        blob = keyring.encrypt(target, plaintext, target_context)
    return {"CiphertextBlob": blob, "SourceKeyId": source.arn, "KeyId": target.arn,
            "SourceEncryptionAlgorithm": rules.ALGORITHM,
            "DestinationEncryptionAlgorithm": rules.ALGORITHM}


def _data_key_length(params: dict[str, Any]) -> int:
    spec, size = params.get("KeySpec"), params.get("NumberOfBytes")
    if (spec is None) == (size is None):
        raise ServiceError("ValidationException",
                           "Give exactly one of KeySpec and NumberOfBytes.")
    if spec is not None:
        if spec not in ("AES_256", "AES_128"):
            raise ServiceError("ValidationException", "KeySpec must be AES_256 or AES_128.")
        return 32 if spec == "AES_256" else 16
    return size


def _generate(ctx: RequestContext, params: dict[str, Any]) -> tuple[Key, bytes, bytes]:
    length = _data_key_length(params)
    context = params.get("EncryptionContext") or {}
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"])
        _authorize(ctx, conn, key, encryption_context=context)
        plaintext = os.urandom(length)
        return key, plaintext, _keyring(ctx).encrypt(key, plaintext, context)


def generate_data_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key, plaintext, blob = _generate(ctx, params)
    return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}


def generate_data_key_without_plaintext(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key, _, blob = _generate(ctx, params)
    return {"CiphertextBlob": blob, "KeyId": key.arn}


def tag_resource(ctx: RequestContext, params: dict[str, Any]) -> Output:
    tags = _tags(params["Tags"])
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        _authorize(ctx, conn, key)
        set_tags(conn, key.key_id, "kms-key", ctx.account_id, ctx.region, tags)
    return {}


def untag_resource(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        _authorize(ctx, conn, key)
        delete_tags(conn, key.key_id, params["TagKeys"])
    return {}


def list_resource_tags(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _find(ctx, conn, params["KeyId"], aliases=False)
        _own(ctx, key)
        _authorize(ctx, conn, key)
        tags = tags_of(conn, [key.key_id])[key.key_id]
    return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
            "Truncated": False}


def _kms_denied(ctx: RequestContext, action: str, key: Key | None = None) -> ServiceError:
    where = f" on resource: {key.arn}" if key else ""
    return ServiceError(
        "AccessDeniedException",
        f"User: {ctx.principal.arn} is not authorized to perform: {action}{where} because no "
        "resource-based policy allows the action")


def _access_denied(action: str) -> ServiceError:
    return ServiceError("AccessDeniedException", f"You are not authorized to perform: {action} "
                        "(no key policy statement or grant allows it).")


SERVICE = Service(
    name="kms",
    iam_prefix="kms",
    handlers={
        "CreateKey": create_key,
        "DescribeKey": describe_key,
        "ListKeys": list_keys,
        "CreateAlias": create_alias,
        "UpdateAlias": update_alias,
        "DeleteAlias": delete_alias,
        "ListAliases": list_aliases,
        "EnableKey": enable_key,
        "DisableKey": disable_key,
        "ScheduleKeyDeletion": schedule_key_deletion,
        "CancelKeyDeletion": cancel_key_deletion,
        "GetKeyPolicy": get_key_policy,
        "PutKeyPolicy": put_key_policy,
        "GetKeyRotationStatus": get_key_rotation_status,
        "EnableKeyRotation": enable_key_rotation,
        "DisableKeyRotation": disable_key_rotation,
        "CreateGrant": create_grant,
        "ListGrants": list_grants,
        "RetireGrant": retire_grant,
        "RevokeGrant": revoke_grant,
        "Encrypt": encrypt,
        "Decrypt": decrypt,
        "ReEncrypt": re_encrypt,
        "GenerateDataKey": generate_data_key,
        "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListResourceTags": list_resource_tags,
    },
    access_denied=_access_denied,
    denial=lambda action, message: ServiceError("AccessDeniedException", message),
    dry_run_error=ServiceError("DryRunOperationException",
                               "The request would have succeeded, but the DryRun option is set.",
                               status=412),
    authorize_first=First.DENY,
)
