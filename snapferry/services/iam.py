"""IAM (query protocol, global): users, access keys, groups, roles, inline and managed
policies with versions, attachments, tags. Entities belong to the caller's account.

Policy documents are checked as IAM checks them (MalformedPolicyDocument naming the
problem) and returned URL-encoded, as IAM returns them (botocore and Terraform decode them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from snapferry.domain import iam as rules
from snapferry.domain.iam import GROUP, ROLE, USER, Group, ManagedPolicy, Role, User
from snapferry.errors import ServiceError
from snapferry.services.context import First, Output, RequestContext, Service
from snapferry.storage import iam as store

# ---- shapes ---------------------------------------------------------------------------------


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _user(user: User, with_tags: bool = True) -> Output:
    out: Output = {"Path": user.path, "UserName": user.name, "UserId": user.user_id,
                   "Arn": user.arn, "CreateDate": user.created}
    if with_tags and user.tags:
        out["Tags"] = _tags(user.tags)
    return out


def _group(group: Group) -> Output:
    return {"Path": group.path, "GroupName": group.name, "GroupId": group.group_id,
            "Arn": group.arn, "CreateDate": group.created}


def _role(role: Role) -> Output:
    out: Output = {"Path": role.path, "RoleName": role.name, "RoleId": role.role_id,
                   "Arn": role.arn, "CreateDate": role.created,
                   "AssumeRolePolicyDocument": quote(role.trust_policy),
                   "MaxSessionDuration": role.max_session, "RoleLastUsed": {}}
    if role.description is not None:
        out["Description"] = role.description
    if role.tags:
        out["Tags"] = _tags(role.tags)
    return out


def _policy(policy: ManagedPolicy) -> Output:
    out: Output = {"PolicyName": policy.name, "PolicyId": policy.policy_id, "Arn": policy.arn,
                   "Path": policy.path, "DefaultVersionId": policy.default_version,
                   "AttachmentCount": policy.attachments, "PermissionsBoundaryUsageCount": 0,
                   "IsAttachable": True, "CreateDate": policy.created,
                   "UpdateDate": policy.updated}
    if policy.description is not None:
        out["Description"] = policy.description
    return out


def _page(items: list[Any], params: dict[str, Any], name: str) -> Output:
    """IAM's Marker/MaxItems paging (the marker is the position of the next item)."""
    marker = str(params.get("Marker") or "0")
    start = int(marker) if marker.isdigit() else 0
    size = params.get("MaxItems") or 100
    page = items[start:start + size]
    out: Output = {name: page, "IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out


def _given_tags(params: dict[str, Any]) -> dict[str, str]:
    tags = {t["Key"]: t["Value"] for t in params.get("Tags") or ()}
    if any(k.lower().startswith("aws:") for k in tags):
        raise rules.invalid_input("Tag keys beginning with aws: are reserved for AWS use.")
    if len(tags) > 50:
        raise rules.limit_exceeded("A user or role has at most 50 tags.")
    return tags


# ---- users ----------------------------------------------------------------------------------

def create_user(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = rules.check_name(USER, params["UserName"])
    path = rules.check_path(params.get("Path"))
    tags = _given_tags(params)
    ctx.authorize()
    user = User(ctx.account_id, name, rules.new_id(USER), path, ctx.clock.now(), tags)
    with ctx.storage.engine.begin() as conn:
        store.insert_user(conn, user)
    return {"User": _user(user)}


def _self_user(ctx: RequestContext, params: dict[str, Any]) -> str | None:
    """The user an operation names, else the caller's own (None for an account root)."""
    return params.get("UserName") or ctx.principal.username


def get_user(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()
    name = _self_user(ctx, params)
    if name is None:  # an account root asking about itself
        account = ctx.account_id
        return {"User": {"Path": "/", "UserName": account, "UserId": account,
                         "Arn": ctx.principal.arn, "CreateDate": ctx.clock.now()}}
    with ctx.storage.engine.connect() as conn:
        return {"User": _user(store.require_user(conn, ctx.account_id, name))}


def list_users(ctx: RequestContext, params: dict[str, Any]) -> Output:
    prefix = rules.check_path_prefix(params.get("PathPrefix"))
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        users = store.list_users(conn, ctx.account_id, prefix)
    return _page([_user(u, with_tags=False) for u in users], params, "Users")


def update_user(ctx: RequestContext, params: dict[str, Any]) -> Output:
    new_name = params.get("NewUserName")
    if new_name:
        rules.check_name(USER, new_name)
    new_path = rules.check_path(params["NewPath"]) if params.get("NewPath") else None
    with ctx.storage.engine.begin() as conn:
        user = store.require_user(conn, ctx.account_id, params["UserName"])
        ctx.authorize()
        store.update_user(conn, user, new_name, new_path)
    return {}


def delete_user(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        user = store.require_user(conn, ctx.account_id, params["UserName"])
        ctx.authorize()
        store.delete_user(conn, user)
    return {}


def _tag_entity(kind: str, require: Callable[..., Any]) -> Callable[..., Output]:
    name_param = "UserName" if kind == USER else "RoleName"

    def tag(ctx: RequestContext, params: dict[str, Any]) -> Output:
        tags = _given_tags(params)
        with ctx.storage.engine.begin() as conn:
            store.lock_tags(conn, ctx.account_id, kind, params[name_param])
            entity = require(conn, ctx.account_id, params[name_param])
            ctx.authorize()
            if len({**entity.tags, **tags}) > 50:
                raise rules.limit_exceeded("A user or role has at most 50 tags.")
            store.set_tags(conn, ctx.account_id, kind, entity.name, tags)
        return {}

    return tag


def _untag_entity(kind: str, require: Callable[..., Any]) -> Callable[..., Output]:
    name_param = "UserName" if kind == USER else "RoleName"

    def untag(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.begin() as conn:
            entity = require(conn, ctx.account_id, params[name_param])
            ctx.authorize()
            store.remove_tags(conn, ctx.account_id, kind, entity.name, params["TagKeys"])
        return {}

    return untag


def _list_entity_tags(kind: str, require: Callable[..., Any]) -> Callable[..., Output]:
    name_param = "UserName" if kind == USER else "RoleName"

    def list_tags(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.connect() as conn:
            entity = require(conn, ctx.account_id, params[name_param])
            ctx.authorize()
        return _page(_tags(entity.tags), params, "Tags")

    return list_tags


# ---- access keys ----------------------------------------------------------------------------

def _key_user(ctx: RequestContext, params: dict[str, Any]) -> str:
    name = _self_user(ctx, params)
    if name is None:
        raise rules.validation("Access keys of an account root are managed with `snapferry "
                               "accounts add`; name the IAM user with UserName.")
    return name


def create_access_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = _key_user(ctx, params)
    with ctx.storage.engine.begin() as conn:
        store.require_user(conn, ctx.account_id, name)
        ctx.authorize()
        if len(store.access_keys_of(conn, ctx.account_id, name)) >= rules.MAX_ACCESS_KEYS:
            raise rules.limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: "
                                       f"{rules.MAX_ACCESS_KEYS}.")
        key_id, secret, now = rules.new_id("key"), rules.new_secret(), ctx.clock.now()
        ctx.storage.accounts.add_user_key(conn, ctx.account_id, name, key_id, secret, now)
    return {"AccessKey": {"UserName": name, "AccessKeyId": key_id, "Status": rules.ACTIVE,
                          "SecretAccessKey": secret, "CreateDate": now}}


def list_access_keys(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = _key_user(ctx, params)
    with ctx.storage.engine.connect() as conn:
        store.require_user(conn, ctx.account_id, name)
        ctx.authorize()
        keys = store.access_keys_of(conn, ctx.account_id, name)
    return _page([{"UserName": name, "AccessKeyId": k.access_key_id,  # type: ignore[attr-defined]
                   "Status": k.status or rules.ACTIVE,  # type: ignore[attr-defined]
                   "CreateDate": k.created_at} for k in keys],  # type: ignore[attr-defined]
                 params, "AccessKeyMetadata")


def _user_key(ctx: RequestContext, conn: Any, params: dict[str, Any]) -> Any:
    name = _key_user(ctx, params)
    store.require_user(conn, ctx.account_id, name)
    key = store.access_key(conn, ctx.account_id, params["AccessKeyId"])
    if key is None or key.user_name != name:
        raise rules.no_such_entity(f"The Access Key with id {params['AccessKeyId']} cannot "
                                   "be found.")
    return key


def update_access_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _user_key(ctx, conn, params)
        ctx.authorize()
        store.set_key_status(conn, key.access_key_id, params["Status"])
    return {}


def delete_access_key(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        key = _user_key(ctx, conn, params)
        ctx.authorize()
        store.delete_access_key(conn, key.access_key_id)
    return {}


def get_access_key_last_used(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        key = store.access_key(conn, ctx.account_id, params["AccessKeyId"])
        if key is None or key.user_name is None:
            raise ServiceError("AccessDenied", "The access key does not exist in your account "
                               "or is not an IAM user's.", 403)
        ctx.authorize()
    used: Output = {"ServiceName": key.last_used_service or "N/A",
                    "Region": key.last_used_region or "N/A"}
    if key.last_used_at is not None:
        used["LastUsedDate"] = key.last_used_at
    return {"UserName": key.user_name, "AccessKeyLastUsed": used}


# ---- groups ---------------------------------------------------------------------------------

def create_group(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = rules.check_name(GROUP, params["GroupName"])
    path = rules.check_path(params.get("Path"))
    ctx.authorize()
    group = Group(ctx.account_id, name, rules.new_id(GROUP), path, ctx.clock.now())
    with ctx.storage.engine.begin() as conn:
        store.insert_group(conn, group)
    return {"Group": _group(group)}


def get_group(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        group = store.require_group(conn, ctx.account_id, params["GroupName"])
        ctx.authorize()
        users = [store.get_user(conn, ctx.account_id, n)
                 for n in store.members(conn, ctx.account_id, group.name)]
    out = _page([_user(u, with_tags=False) for u in users if u], params, "Users")
    return {"Group": _group(group), **out}


def list_groups(ctx: RequestContext, params: dict[str, Any]) -> Output:
    prefix = rules.check_path_prefix(params.get("PathPrefix"))
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        groups = store.list_groups(conn, ctx.account_id, prefix)
    return _page([_group(g) for g in groups], params, "Groups")


def delete_group(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        group = store.require_group(conn, ctx.account_id, params["GroupName"])
        ctx.authorize()
        store.delete_group(conn, group)
    return {}


def add_user_to_group(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        group = store.require_group(conn, ctx.account_id, params["GroupName"])
        user = store.require_user(conn, ctx.account_id, params["UserName"])
        ctx.authorize()
        store.add_member(conn, ctx.account_id, group.name, user.name)
    return {}


def remove_user_from_group(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        group = store.require_group(conn, ctx.account_id, params["GroupName"])
        user = store.require_user(conn, ctx.account_id, params["UserName"])
        if user.name not in store.members(conn, ctx.account_id, group.name):
            raise rules.no_such_entity(f"The user with name {user.name} cannot be found in "
                                       f"group {group.name}.")
        ctx.authorize()
        store.remove_member(conn, ctx.account_id, group.name, user.name)
    return {}


def list_groups_for_user(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        user = store.require_user(conn, ctx.account_id, params["UserName"])
        ctx.authorize()
        groups = store.groups_of(conn, ctx.account_id, user.name)
    return _page([_group(g) for g in groups], params, "Groups")


# ---- roles ----------------------------------------------------------------------------------

def create_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = rules.check_name(ROLE, params["RoleName"])
    path = rules.check_path(params.get("Path"))
    trust = params["AssumeRolePolicyDocument"]
    rules.trust_document(trust)
    max_session = rules.check_max_session(params.get("MaxSessionDuration"))
    tags = _given_tags(params)
    ctx.authorize()
    role = Role(ctx.account_id, name, rules.new_id(ROLE), path, ctx.clock.now(), trust,
                max_session, params.get("Description"), tags)
    with ctx.storage.engine.begin() as conn:
        store.insert_role(conn, role)
    return {"Role": _role(role)}


def get_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        role = store.require_role(conn, ctx.account_id, params["RoleName"])
        ctx.authorize()
    return {"Role": _role(role)}


def list_roles(ctx: RequestContext, params: dict[str, Any]) -> Output:
    prefix = rules.check_path_prefix(params.get("PathPrefix"))
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        roles = store.list_roles(conn, ctx.account_id, prefix)
    return _page([_role(r) for r in roles], params, "Roles")


def delete_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        role = store.require_role(conn, ctx.account_id, params["RoleName"])
        ctx.authorize()
        store.delete_role(conn, role)
    return {}


def update_assume_role_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    trust = params["PolicyDocument"]
    rules.trust_document(trust)
    with ctx.storage.engine.begin() as conn:
        role = store.require_role(conn, ctx.account_id, params["RoleName"])
        ctx.authorize()
        store.update_role(conn, role, trust_policy=trust)
    return {}


def update_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    values: dict[str, Any] = {}
    if params.get("MaxSessionDuration") is not None:
        values["max_session"] = rules.check_max_session(params["MaxSessionDuration"])
    if params.get("Description") is not None:
        values["description"] = params["Description"]
    with ctx.storage.engine.begin() as conn:
        role = store.require_role(conn, ctx.account_id, params["RoleName"])
        ctx.authorize()
        if values:
            store.update_role(conn, role, **values)
    return {}


def list_instance_profiles_for_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    """No instance profiles exist here (no instances); tools ask before deleting a role."""
    with ctx.storage.engine.connect() as conn:
        store.require_role(conn, ctx.account_id, params["RoleName"])
        ctx.authorize()
    return {"InstanceProfiles": [], "IsTruncated": False}


# ---- inline policies ------------------------------------------------------------------------

_REQUIRE = {USER: store.require_user, GROUP: store.require_group, ROLE: store.require_role}
_NAME_PARAM = {USER: "UserName", GROUP: "GroupName", ROLE: "RoleName"}


def _inline(kind: str) -> dict[str, Callable[..., Output]]:
    entity_param = _NAME_PARAM[kind]
    label = kind.capitalize()

    def owner(ctx: RequestContext, conn: Any, params: dict[str, Any]) -> str:
        return _REQUIRE[kind](conn, ctx.account_id, params[entity_param]).name

    def put(ctx: RequestContext, params: dict[str, Any]) -> Output:
        name = rules.check_policy_name(params["PolicyName"])
        rules.identity_document(params["PolicyDocument"], name, rules.INLINE_MAX[kind])
        with ctx.storage.engine.begin() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            store.put_inline(conn, ctx.account_id, kind, entity, name, params["PolicyDocument"])
        return {}

    def get(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.connect() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            text = store.inline_document(conn, ctx.account_id, kind, entity,
                                         params["PolicyName"])
        if text is None:
            raise rules.no_such_entity(f"The {kind} policy with name {params['PolicyName']} "
                                       "cannot be found.")
        return {entity_param: entity, "PolicyName": params["PolicyName"],
                "PolicyDocument": quote(text)}

    def listing(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.connect() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            names = store.inline_names(conn, ctx.account_id, kind, entity)
        return _page(names, params, "PolicyNames")

    def remove(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.begin() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            if not store.delete_inline(conn, ctx.account_id, kind, entity,
                                       params["PolicyName"]):
                raise rules.no_such_entity(f"The {kind} policy with name "
                                           f"{params['PolicyName']} cannot be found.")
        return {}

    def attach(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.begin() as conn:
            entity = owner(ctx, conn, params)
            policy = store.require_policy(conn, params["PolicyArn"], ctx.account_id)
            _visible(ctx, policy)
            ctx.authorize()
            store.attach(conn, ctx.account_id, kind, entity, policy.arn)
        return {}

    def detach(ctx: RequestContext, params: dict[str, Any]) -> Output:
        with ctx.storage.engine.begin() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            if not store.detach(conn, ctx.account_id, kind, entity, params["PolicyArn"]):
                raise rules.no_such_entity(f"Policy {params['PolicyArn']} was not found.")
        return {}

    def attached(ctx: RequestContext, params: dict[str, Any]) -> Output:
        prefix = rules.check_path_prefix(params.get("PathPrefix"))
        with ctx.storage.engine.connect() as conn:
            entity = owner(ctx, conn, params)
            ctx.authorize()
            arns = store.attached(conn, ctx.account_id, kind, entity)
        return _page([{"PolicyName": rules.parse_policy_arn(a)[1], "PolicyArn": a}
                      for a in arns if a.split(":policy", 1)[1].startswith(prefix)],
                     params, "AttachedPolicies")

    return {f"Put{label}Policy": put, f"Get{label}Policy": get,
            f"List{label}Policies": listing, f"Delete{label}Policy": remove,
            f"Attach{label}Policy": attach, f"Detach{label}Policy": detach,
            f"ListAttached{label}Policies": attached}


# ---- managed policies -----------------------------------------------------------------------

def _visible(ctx: RequestContext, policy: ManagedPolicy) -> None:
    account, _ = rules.parse_policy_arn(policy.arn)
    if account not in ("aws", ctx.account_id):
        raise rules.no_such_entity(f"Policy {policy.arn} does not exist or is not attachable.")


def _own_policy(ctx: RequestContext, conn: Any, arn: str) -> ManagedPolicy:
    policy = store.require_policy(conn, arn, ctx.account_id)
    _visible(ctx, policy)
    return policy


def _customer(policy: ManagedPolicy) -> None:
    if policy.aws_managed:
        raise ServiceError("UnmodifiableEntity", f"Policy {policy.arn} is an AWS managed "
                           "policy and cannot be changed or deleted.", 400)


def create_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = rules.check_policy_name(params["PolicyName"])
    path = rules.check_path(params.get("Path"))
    rules.identity_document(params["PolicyDocument"], name)
    ctx.authorize()
    now = ctx.clock.now()
    policy = ManagedPolicy(rules.policy_arn(ctx.account_id, path, name), name,
                           rules.new_id("policy"), path, "v1", now, now,
                           params.get("Description"))
    with ctx.storage.engine.begin() as conn:
        store.insert_policy(conn, ctx.account_id, policy, params["PolicyDocument"])
    return {"Policy": _policy(policy)}


def get_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        ctx.authorize()
    return {"Policy": _policy(policy)}


def _version(policy: ManagedPolicy, version: tuple[str, str, Any], document: bool) -> Output:
    out: Output = {"VersionId": version[0], "IsDefaultVersion": version[0] ==
                   policy.default_version, "CreateDate": version[2]}
    if document:
        out["Document"] = quote(version[1])
    return out


def get_policy_version(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        ctx.authorize()
        found = [v for v in store.versions(conn, policy.arn) if v[0] == params["VersionId"]]
    if not found:
        raise rules.no_such_entity(f"Policy {policy.arn} version {params['VersionId']} does "
                                   "not exist or is not attachable.")
    return {"PolicyVersion": _version(policy, found[0], True)}


def list_policy_versions(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        ctx.authorize()
        found = store.versions(conn, policy.arn)
    return _page([_version(policy, v, False) for v in found], params, "Versions")


def create_policy_version(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        _customer(policy)
        rules.identity_document(params["PolicyDocument"], policy.name)
        ctx.authorize()
        if len(store.versions(conn, policy.arn)) >= rules.MAX_POLICY_VERSIONS:
            raise rules.limit_exceeded(f"A managed policy can have up to "
                                       f"{rules.MAX_POLICY_VERSIONS} versions. Before you "
                                       "create a new version, you must delete an existing "
                                       "version.")
        default = bool(params.get("SetAsDefault"))
        now = ctx.clock.now()
        version_id = store.add_version(conn, policy.arn, params["PolicyDocument"], now, default)
    return {"PolicyVersion": {"VersionId": version_id, "IsDefaultVersion": default,
                              "CreateDate": now}}


def set_default_policy_version(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        _customer(policy)
        if params["VersionId"] not in [v[0] for v in store.versions(conn, policy.arn)]:
            raise rules.no_such_entity(f"Policy {policy.arn} version {params['VersionId']} "
                                       "does not exist.")
        ctx.authorize()
        store.set_default_version(conn, policy.arn, params["VersionId"], ctx.clock.now())
    return {}


def delete_policy_version(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        _customer(policy)
        version_id = params["VersionId"]
        if version_id not in [v[0] for v in store.versions(conn, policy.arn)]:
            raise rules.no_such_entity(f"Policy {policy.arn} version {version_id} does not "
                                       "exist.")
        if version_id == policy.default_version:
            raise rules.delete_conflict("Cannot delete the default version of a policy.")
        ctx.authorize()
        store.delete_version(conn, policy.arn, version_id)
    return {}


def delete_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        policy = _own_policy(ctx, conn, params["PolicyArn"])
        _customer(policy)
        if store.attachments_of_policy(conn, policy.arn):
            raise rules.delete_conflict("Cannot delete a policy attached to entities.")
        ctx.authorize()
        store.delete_policy(conn, policy.arn)
    return {}


def list_policies(ctx: RequestContext, params: dict[str, Any]) -> Output:
    prefix = rules.check_path_prefix(params.get("PathPrefix"))
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        found = store.list_policies(conn, ctx.account_id, params.get("Scope") or "All",
                                    bool(params.get("OnlyAttached")), prefix)
    return _page([_policy(p) for p in found], params, "Policies")


def _denied(action: str, message: str | None = None) -> ServiceError:
    return ServiceError("AccessDenied", message or f"You are not authorized to perform: "
                        f"{action}.", 403)


SERVICE = Service(
    name="iam",
    iam_prefix="iam",
    handlers={
        "CreateUser": create_user,
        "GetUser": get_user,
        "ListUsers": list_users,
        "UpdateUser": update_user,
        "DeleteUser": delete_user,
        "TagUser": _tag_entity(USER, store.require_user),
        "UntagUser": _untag_entity(USER, store.require_user),
        "ListUserTags": _list_entity_tags(USER, store.require_user),
        "CreateAccessKey": create_access_key,
        "ListAccessKeys": list_access_keys,
        "UpdateAccessKey": update_access_key,
        "DeleteAccessKey": delete_access_key,
        "GetAccessKeyLastUsed": get_access_key_last_used,
        "CreateGroup": create_group,
        "GetGroup": get_group,
        "ListGroups": list_groups,
        "DeleteGroup": delete_group,
        "AddUserToGroup": add_user_to_group,
        "RemoveUserFromGroup": remove_user_from_group,
        "ListGroupsForUser": list_groups_for_user,
        "CreateRole": create_role,
        "GetRole": get_role,
        "ListRoles": list_roles,
        "DeleteRole": delete_role,
        "UpdateAssumeRolePolicy": update_assume_role_policy,
        "UpdateRole": update_role,
        "TagRole": _tag_entity(ROLE, store.require_role),
        "UntagRole": _untag_entity(ROLE, store.require_role),
        "ListRoleTags": _list_entity_tags(ROLE, store.require_role),
        "ListInstanceProfilesForRole": list_instance_profiles_for_role,
        **_inline(USER), **_inline(GROUP), **_inline(ROLE),
        "CreatePolicy": create_policy,
        "GetPolicy": get_policy,
        "GetPolicyVersion": get_policy_version,
        "ListPolicyVersions": list_policy_versions,
        "CreatePolicyVersion": create_policy_version,
        "SetDefaultPolicyVersion": set_default_policy_version,
        "DeletePolicyVersion": delete_policy_version,
        "DeletePolicy": delete_policy,
        "ListPolicies": list_policies,
    },
    access_denied=_denied,
    denial=_denied,
    authorize_first=First.IDENTITY,
    complete_arns=store.complete_arns,
)
