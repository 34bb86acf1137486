"""IAM's entities in the metadata database: users, groups, roles, inline and managed
policies, attachments, tags; and the identity a set of credentials acts as.

Every function takes the caller's connection, so a handler checks and writes in one
transaction. Names are unique per account as IAM has them (case-insensitively for users,
groups and roles: IAM refuses `Alice` beside `alice`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from snapferry.domain import iam as rules
from snapferry.domain import managed_policies
from snapferry.domain.accounts import ASSUMED_ROLE, ROOT, USER, Principal
from snapferry.domain.iam import Group, ManagedPolicy, Role, User
from snapferry.domain.policy_documents import Kind, PolicyDocument, parse_document
from snapferry.storage.metadata import (
    access_keys,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_tags,
    iam_users,
    serialize,
)

# ---- the ARNs requests name ----------------------------------------------------------------

_PATHED = {rules.USER: iam_users, rules.GROUP: iam_groups, rules.ROLE: iam_roles}


def complete_arns(engine: Engine, arns: Iterable[str]) -> list[str]:
    """The ARNs of the users, groups and roles a request names by name alone
    (`arn:aws:iam::ACCT:user/NAME`), with the path each was created with
    (`user/division/team/NAME`): a policy judges the full ARN. A name not stored keeps its
    path-less ARN (the root path, as it would be created)."""
    arns = list(arns)
    wanted = {}
    for index, arn in enumerate(arns):
        head, _, rest = arn.partition(":iam::")
        account_id, _, resource = rest.partition(":")
        kind, _, name = resource.partition("/")
        if head == "arn:aws" and kind in _PATHED and name and "/" not in name:
            wanted[index] = (account_id, kind, name)
    if not wanted:
        return arns
    with engine.connect() as conn:
        for index, (account_id, kind, name) in wanted.items():
            table = _PATHED[kind]
            path = conn.execute(select(table.c.path).where(
                table.c.account_id == account_id, table.c.name == name)).scalar()
            if path:
                arns[index] = rules.arn(account_id, kind, path, name)
    return arns


# ---- users ----------------------------------------------------------------------------------


def _user(row: object, tags: dict[str, str]) -> User:
    return User(row.account_id, row.name, row.user_id, row.path, row.created_at,  # type: ignore[attr-defined]
                tags)


def get_user(conn: Connection, account_id: str, name: str) -> User | None:
    row = conn.execute(select(iam_users).where(iam_users.c.account_id == account_id,
                                               iam_users.c.name == name)).first()
    return _user(row, get_tags(conn, account_id, rules.USER, name)) if row else None


def require_user(conn: Connection, account_id: str, name: str) -> User:
    user = get_user(conn, account_id, name)
    if user is None:
        raise rules.no_such_entity(f"The user with name {name} cannot be found.")
    return user


def _taken(conn: Connection, table: object, account_id: str, name: str) -> bool:
    return conn.execute(select(table.c.name).where(  # type: ignore[attr-defined]
        table.c.account_id == account_id,  # type: ignore[attr-defined]
        func.lower(table.c.name) == name.lower())).first() is not None  # type: ignore[attr-defined]


def insert_user(conn: Connection, user: User) -> None:
    if _taken(conn, iam_users, user.account_id, user.name):
        raise rules.already_exists(f"User with name {user.name} already exists.")
    conn.execute(insert(iam_users).values(account_id=user.account_id, name=user.name,
                                          user_id=user.user_id, path=user.path,
                                          created_at=user.created))
    set_tags(conn, user.account_id, rules.USER, user.name, user.tags)


def list_users(conn: Connection, account_id: str, prefix: str = "/") -> list[User]:
    rows = conn.execute(select(iam_users).where(iam_users.c.account_id == account_id)
                        .order_by(iam_users.c.name))
    return [_user(r, {}) for r in rows if r.path.startswith(prefix)]


def update_user(conn: Connection, user: User, new_name: str | None, new_path: str | None
                ) -> None:
    if new_name and new_name != user.name:
        if _taken(conn, iam_users, user.account_id, new_name):
            raise rules.already_exists(f"User with name {new_name} already exists.")
        for table, column in ((iam_users, "name"), (iam_group_members, "user_name"),
                              (access_keys, "user_name")):
            conn.execute(update(table).where(table.c.account_id == user.account_id,
                                             table.c[column] == user.name)
                         .values({column: new_name}))
        for table in (iam_inline_policies, iam_attachments, iam_tags):
            conn.execute(update(table).where(table.c.account_id == user.account_id,
                                             table.c.kind == rules.USER,
                                             table.c.owner == user.name)
                         .values(owner=new_name))
    if new_path:
        conn.execute(update(iam_users).where(iam_users.c.account_id == user.account_id,
                                             iam_users.c.name == (new_name or user.name))
                     .values(path=new_path))


def delete_user(conn: Connection, user: User) -> None:
    """DeleteConflict while the user has keys, policies or groups, as IAM."""
    account, name = user.account_id, user.name
    if access_keys_of(conn, account, name):
        raise rules.delete_conflict("Cannot delete entity, must delete access keys first.")
    if inline_names(conn, account, rules.USER, name):
        raise rules.delete_conflict("Cannot delete entity, must delete policies first.")
    if attached(conn, account, rules.USER, name):
        raise rules.delete_conflict("Cannot delete entity, must detach all policies first.")
    if groups_of(conn, account, name):
        raise rules.delete_conflict("Cannot delete entity, must remove users from group "
                                    "first.")
    set_tags(conn, account, rules.USER, name, {}, replace=True)
    conn.execute(delete(iam_users).where(iam_users.c.account_id == account,
                                         iam_users.c.name == name))


# ---- tags -----------------------------------------------------------------------------------

def get_tags(conn: Connection, account_id: str, kind: str, owner: str) -> dict[str, str]:
    rows = conn.execute(select(iam_tags.c.key, iam_tags.c.value).where(
        iam_tags.c.account_id == account_id, iam_tags.c.kind == kind,
        iam_tags.c.owner == owner).order_by(iam_tags.c.key))
    return {r.key: r.value for r in rows}


def lock_tags(conn: Connection, account_id: str, kind: str, owner: str) -> None:
    """Before a count-then-add of a user's or role's tags (the 50-tag limit): its tag lock,
    to the end of the transaction, so two API processes take turns."""
    serialize(conn, "iam-tags", account_id, kind, owner)


def set_tags(conn: Connection, account_id: str, kind: str, owner: str, tags: dict[str, str],
             replace: bool = False) -> None:
    where = and_(iam_tags.c.account_id == account_id, iam_tags.c.kind == kind,
                 iam_tags.c.owner == owner)
    if replace:
        conn.execute(delete(iam_tags).where(where))
    elif tags:
        conn.execute(delete(iam_tags).where(where, iam_tags.c.key.in_(list(tags))))
    if tags:
        conn.execute(insert(iam_tags), [
            {"account_id": account_id, "kind": kind, "owner": owner, "key": k, "value": v}
            for k, v in tags.items()])


def remove_tags(conn: Connection, account_id: str, kind: str, owner: str,
                keys: Iterable[str]) -> None:
    conn.execute(delete(iam_tags).where(iam_tags.c.account_id == account_id,
                                        iam_tags.c.kind == kind, iam_tags.c.owner == owner,
                                        iam_tags.c.key.in_(list(keys))))


# ---- access keys of users -------------------------------------------------------------------

def access_keys_of(conn: Connection, account_id: str, user_name: str) -> list[object]:
    return list(conn.execute(select(access_keys).where(
        access_keys.c.account_id == account_id, access_keys.c.user_name == user_name)
        .order_by(access_keys.c.created_at)))


def access_key(conn: Connection, account_id: str, key_id: str) -> object | None:
    return conn.execute(select(access_keys).where(access_keys.c.account_id == account_id,
                                                  access_keys.c.access_key_id == key_id)).first()


def set_key_status(conn: Connection, key_id: str, status: str) -> None:
    conn.execute(update(access_keys).where(access_keys.c.access_key_id == key_id)
                 .values(status=status))


def delete_access_key(conn: Connection, key_id: str) -> None:
    conn.execute(delete(access_keys).where(access_keys.c.access_key_id == key_id))


# ---- groups ---------------------------------------------------------------------------------

def get_group(conn: Connection, account_id: str, name: str) -> Group | None:
    row = conn.execute(select(iam_groups).where(iam_groups.c.account_id == account_id,
                                                iam_groups.c.name == name)).first()
    return Group(row.account_id, row.name, row.group_id, row.path, row.created_at) if row \
        else None


def require_group(conn: Connection, account_id: str, name: str) -> Group:
    group = get_group(conn, account_id, name)
    if group is None:
        raise rules.no_such_entity(f"The group with name {name} cannot be found.")
    return group


def insert_group(conn: Connection, group: Group) -> None:
    if _taken(conn, iam_groups, group.account_id, group.name):
        raise rules.already_exists(f"Group with name {group.name} already exists.")
    conn.execute(insert(iam_groups).values(account_id=group.account_id, name=group.name,
                                           group_id=group.group_id, path=group.path,
                                           created_at=group.created))


def list_groups(conn: Connection, account_id: str, prefix: str = "/") -> list[Group]:
    rows = conn.execute(select(iam_groups).where(iam_groups.c.account_id == account_id)
                        .order_by(iam_groups.c.name))
    return [Group(r.account_id, r.name, r.group_id, r.path, r.created_at) for r in rows
            if r.path.startswith(prefix)]


def members(conn: Connection, account_id: str, group: str) -> list[str]:
    rows = conn.execute(select(iam_group_members.c.user_name).where(
        iam_group_members.c.account_id == account_id, iam_group_members.c.group_name == group)
        .order_by(iam_group_members.c.user_name))
    return [r.user_name for r in rows]


def groups_of(conn: Connection, account_id: str, user: str) -> list[Group]:
    rows = conn.execute(select(iam_groups).join(iam_group_members, and_(
        iam_group_members.c.account_id == iam_groups.c.account_id,
        iam_group_members.c.group_name == iam_groups.c.name)).where(
        iam_group_members.c.account_id == account_id, iam_group_members.c.user_name == user)
        .order_by(iam_groups.c.name))
    return [Group(r.account_id, r.name, r.group_id, r.path, r.created_at) for r in rows]


def add_member(conn: Connection, account_id: str, group: str, user: str) -> None:
    if user not in members(conn, account_id, group):
        conn.execute(insert(iam_group_members).values(account_id=account_id, group_name=group,
                                                      user_name=user))


def remove_member(conn: Connection, account_id: str, group: str, user: str) -> None:
    conn.execute(delete(iam_group_members).where(
        iam_group_members.c.account_id == account_id, iam_group_members.c.group_name == group,
        iam_group_members.c.user_name == user))


def delete_group(conn: Connection, group: Group) -> None:
    account, name = group.account_id, group.name
    if inline_names(conn, account, rules.GROUP, name):
        raise rules.delete_conflict("Cannot delete entity, must delete policies first.")
    if attached(conn, account, rules.GROUP, name):
        raise rules.delete_conflict("Cannot delete entity, must detach all policies first.")
    if members(conn, account, name):
        raise rules.delete_conflict("Cannot delete entity, must remove users from group "
                                    "first.")
    conn.execute(delete(iam_groups).where(iam_groups.c.account_id == account,
                                          iam_groups.c.name == name))


# ---- roles ----------------------------------------------------------------------------------

def _role(conn: Connection, row: object) -> Role:
    r = row
    return Role(r.account_id, r.name, r.role_id, r.path, r.created_at,  # type: ignore[attr-defined]
                r.trust_policy, r.max_session, r.description,  # type: ignore[attr-defined]
                get_tags(conn, r.account_id, rules.ROLE, r.name))  # type: ignore[attr-defined]


def get_role(conn: Connection, account_id: str, name: str) -> Role | None:
    row = conn.execute(select(iam_roles).where(iam_roles.c.account_id == account_id,
                                               iam_roles.c.name == name)).first()
    return _role(conn, row) if row else None


def require_role(conn: Connection, account_id: str, name: str) -> Role:
    role = get_role(conn, account_id, name)
    if role is None:
        raise rules.no_such_entity(f"The role with name {name} cannot be found.")
    return role


def insert_role(conn: Connection, role: Role) -> None:
    if _taken(conn, iam_roles, role.account_id, role.name):
        raise rules.already_exists(f"Role with name {role.name} already exists.")
    conn.execute(insert(iam_roles).values(
        account_id=role.account_id, name=role.name, role_id=role.role_id, path=role.path,
        trust_policy=role.trust_policy, max_session=role.max_session,
        description=role.description, created_at=role.created))
    set_tags(conn, role.account_id, rules.ROLE, role.name, role.tags)


def list_roles(conn: Connection, account_id: str, prefix: str = "/") -> list[Role]:
    rows = conn.execute(select(iam_roles).where(iam_roles.c.account_id == account_id)
                        .order_by(iam_roles.c.name))
    return [_role(conn, r) for r in rows if r.path.startswith(prefix)]


def update_role(conn: Connection, role: Role, **values: object) -> None:
    conn.execute(update(iam_roles).where(iam_roles.c.account_id == role.account_id,
                                         iam_roles.c.name == role.name).values(**values))


def delete_role(conn: Connection, role: Role) -> None:
    account, name = role.account_id, role.name
    if inline_names(conn, account, rules.ROLE, name):
        raise rules.delete_conflict("Cannot delete entity, must delete policies first.")
    if attached(conn, account, rules.ROLE, name):
        raise rules.delete_conflict("Cannot delete entity, must detach all policies first.")
    set_tags(conn, account, rules.ROLE, name, {}, replace=True)
    conn.execute(delete(iam_roles).where(iam_roles.c.account_id == account,
                                         iam_roles.c.name == name))


# ---- inline policies ------------------------------------------------------------------------

def inline_names(conn: Connection, account_id: str, kind: str, owner: str) -> list[str]:
    rows = conn.execute(select(iam_inline_policies.c.name).where(
        iam_inline_policies.c.account_id == account_id, iam_inline_policies.c.kind == kind,
        iam_inline_policies.c.owner == owner).order_by(iam_inline_policies.c.name))
    return [r.name for r in rows]


def inline_document(conn: Connection, account_id: str, kind: str, owner: str, name: str
                    ) -> str | None:
    return conn.execute(select(iam_inline_policies.c.document).where(
        iam_inline_policies.c.account_id == account_id, iam_inline_policies.c.kind == kind,
        iam_inline_policies.c.owner == owner, iam_inline_policies.c.name == name)).scalar()


def put_inline(conn: Connection, account_id: str, kind: str, owner: str, name: str,
               document: str) -> None:
    delete_inline(conn, account_id, kind, owner, name)
    conn.execute(insert(iam_inline_policies).values(account_id=account_id, kind=kind,
                                                    owner=owner, name=name, document=document))


def delete_inline(conn: Connection, account_id: str, kind: str, owner: str, name: str) -> bool:
    return conn.execute(delete(iam_inline_policies).where(
        iam_inline_policies.c.account_id == account_id, iam_inline_policies.c.kind == kind,
        iam_inline_policies.c.owner == owner, iam_inline_policies.c.name == name)
    ).rowcount > 0


# ---- managed policies -----------------------------------------------------------------------

def _count_attachments(conn: Connection, arn: str, account_id: str | None = None) -> int:
    statement = select(func.count()).select_from(iam_attachments).where(
        iam_attachments.c.policy_arn == arn)
    if account_id is not None:
        statement = statement.where(iam_attachments.c.account_id == account_id)
    return conn.execute(statement).scalar() or 0


def get_policy(conn: Connection, arn: str, account_id: str) -> ManagedPolicy | None:
    """A customer managed policy of `account_id`'s, or an AWS managed one."""
    aws = managed_policies.managed().get(arn)
    if aws is not None:
        return ManagedPolicy(**{**aws.__dict__,
                                "attachments": _count_attachments(conn, arn, account_id)})
    row = conn.execute(select(iam_policies).where(iam_policies.c.arn == arn)).first()
    if row is None:
        return None
    return ManagedPolicy(row.arn, row.name, row.policy_id, row.path, row.default_version,
                         row.created_at, row.updated_at, row.description,
                         _count_attachments(conn, arn))


def require_policy(conn: Connection, arn: str, account_id: str) -> ManagedPolicy:
    rules.parse_policy_arn(arn)
    policy = get_policy(conn, arn, account_id)
    if policy is None:
        raise rules.no_such_entity(f"Policy {arn} does not exist or is not attachable.")
    return policy


def insert_policy(conn: Connection, account_id: str, policy: ManagedPolicy, document: str
                  ) -> None:
    if conn.execute(select(iam_policies.c.arn).where(
            iam_policies.c.account_id == account_id,
            iam_policies.c.name == policy.name)).first():
        raise rules.already_exists(f"A policy called {policy.name} already exists. Duplicate "
                                   "names are not allowed.")
    conn.execute(insert(iam_policies).values(
        arn=policy.arn, account_id=account_id, name=policy.name, policy_id=policy.policy_id,
        path=policy.path, description=policy.description, default_version="v1",
        next_version=2, created_at=policy.created, updated_at=policy.updated))
    conn.execute(insert(iam_policy_versions).values(policy_arn=policy.arn, version_id="v1",
                                                    document=document,
                                                    created_at=policy.created))


def list_policies(conn: Connection, account_id: str, scope: str, only_attached: bool,
                  prefix: str = "/") -> list[ManagedPolicy]:
    found: list[ManagedPolicy] = []
    if scope in ("All", "AWS"):
        found += [p for arn in managed_policies.managed()
                  if (p := get_policy(conn, arn, account_id)) is not None]
    if scope in ("All", "Local"):
        rows = conn.execute(select(iam_policies.c.arn).where(
            iam_policies.c.account_id == account_id).order_by(iam_policies.c.name))
        found += [p for r in rows if (p := get_policy(conn, r.arn, account_id)) is not None]
    return [p for p in found if p.path.startswith(prefix)
            and (not only_attached or p.attachments > 0)]


def versions(conn: Connection, arn: str) -> list[tuple[str, str, dt.datetime]]:
    """(version id, document, created) of a customer managed policy, newest first."""
    aws = managed_policies.document(arn)
    if aws is not None:
        return [(managed_policies.VERSION, aws, managed_policies.CREATED)]
    rows = conn.execute(select(iam_policy_versions).where(
        iam_policy_versions.c.policy_arn == arn))
    found = [(r.version_id, r.document, r.created_at) for r in rows]
    return sorted(found, key=lambda v: int(v[0][1:]), reverse=True)


def add_version(conn: Connection, arn: str, document: str, now: dt.datetime,
                make_default: bool) -> str:
    row = conn.execute(select(iam_policies.c.next_version).where(
        iam_policies.c.arn == arn)).one()
    version_id = f"v{row.next_version}"
    conn.execute(insert(iam_policy_versions).values(policy_arn=arn, version_id=version_id,
                                                    document=document, created_at=now))
    values: dict[str, object] = {"next_version": row.next_version + 1, "updated_at": now}
    if make_default:
        values["default_version"] = version_id
    conn.execute(update(iam_policies).where(iam_policies.c.arn == arn).values(**values))
    return version_id


def set_default_version(conn: Connection, arn: str, version_id: str, now: dt.datetime) -> None:
    conn.execute(update(iam_policies).where(iam_policies.c.arn == arn)
                 .values(default_version=version_id, updated_at=now))


def delete_version(conn: Connection, arn: str, version_id: str) -> None:
    conn.execute(delete(iam_policy_versions).where(
        iam_policy_versions.c.policy_arn == arn, iam_policy_versions.c.version_id == version_id))


def delete_policy(conn: Connection, arn: str) -> None:
    conn.execute(delete(iam_policy_versions).where(iam_policy_versions.c.policy_arn == arn))
    conn.execute(delete(iam_policies).where(iam_policies.c.arn == arn))


def default_document(conn: Connection, arn: str) -> str | None:
    aws = managed_policies.document(arn)
    if aws is not None:
        return aws
    return conn.execute(select(iam_policy_versions.c.document).join(
        iam_policies, and_(iam_policies.c.arn == iam_policy_versions.c.policy_arn,
                           iam_policies.c.default_version == iam_policy_versions.c.version_id))
        .where(iam_policies.c.arn == arn)).scalar()


# ---- attachments ----------------------------------------------------------------------------

def attached(conn: Connection, account_id: str, kind: str, owner: str) -> list[str]:
    rows = conn.execute(select(iam_attachments.c.policy_arn).where(
        iam_attachments.c.account_id == account_id, iam_attachments.c.kind == kind,
        iam_attachments.c.owner == owner).order_by(iam_attachments.c.policy_arn))
    return [r.policy_arn for r in rows]


def attach(conn: Connection, account_id: str, kind: str, owner: str, arn: str) -> None:
    present = attached(conn, account_id, kind, owner)
    if arn in present:
        return
    if len(present) >= rules.MAX_ATTACHED:
        # AWS names the quota by the entity: PoliciesPerUser, PoliciesPerGroup, PoliciesPerRole.
        raise rules.limit_exceeded(f"Cannot exceed quota for PoliciesPer{kind.capitalize()}: "
                                   f"{rules.MAX_ATTACHED}.")
    conn.execute(insert(iam_attachments).values(account_id=account_id, kind=kind, owner=owner,
                                                policy_arn=arn))


def detach(conn: Connection, account_id: str, kind: str, owner: str, arn: str) -> bool:
    return conn.execute(delete(iam_attachments).where(
        iam_attachments.c.account_id == account_id, iam_attachments.c.kind == kind,
        iam_attachments.c.owner == owner, iam_attachments.c.policy_arn == arn)).rowcount > 0


def attachments_of_policy(conn: Connection, arn: str) -> int:
    return _count_attachments(conn, arn)


# ---- the identity credentials act as --------------------------------------------------------

@lru_cache(maxsize=2048)
def _parsed(text: str, name: str, kind: Kind = Kind.IDENTITY) -> PolicyDocument:
    return parse_document(text, kind, name)


def _policies_of(conn: Connection, account_id: str, kind: str, owner: str
                 ) -> list[PolicyDocument]:
    found = []
    for name in inline_names(conn, account_id, kind, owner):
        text = inline_document(conn, account_id, kind, owner, name)
        if text is not None:
            found.append(_parsed(text, name))
    for arn in attached(conn, account_id, kind, owner):
        text = default_document(conn, arn)
        if text is not None:
            found.append(_parsed(text, arn))
    return found


def user_policies(conn: Connection, account_id: str, user: str) -> tuple[PolicyDocument, ...]:
    found = _policies_of(conn, account_id, rules.USER, user)
    for group in groups_of(conn, account_id, user):
        found += _policies_of(conn, account_id, rules.GROUP, group.name)
    return tuple(found)


def session_documents(texts: list[str]) -> tuple[PolicyDocument, ...]:
    return tuple(_parsed(text, f"session-policy-{i}", Kind.SESSION)
                 for i, text in enumerate(texts))


def principal(conn: Connection, account_id: str, access_key_id: str, kind: str,
              name: str | None, session_name: str | None = None,
              session_policies: str | None = None, session_tags: str | None = None,
              temporary: bool = False, expires_at: dt.datetime | None = None
              ) -> Principal | None:
    """The principal credentials act as, with its policies; None when its user or role is
    gone (its credentials no longer name anyone)."""
    if kind == ROOT or not name:
        return Principal(account_id, access_key_id, temporary=temporary, expires_at=expires_at)
    if kind == USER:
        user = get_user(conn, account_id, name)
        if user is None:
            return None
        return Principal(account_id, access_key_id, USER, name, user.user_id, user.path,
                         policies=user_policies(conn, account_id, name),
                         tags=tuple(user.tags.items()), temporary=temporary,
                         expires_at=expires_at)
    role = get_role(conn, account_id, name)
    if role is None:
        return None
    tags = {**role.tags, **json.loads(session_tags or "{}")}
    session = (session_documents(json.loads(session_policies))
               if session_policies is not None else None)
    return Principal(account_id, access_key_id, ASSUMED_ROLE, name, role.role_id, role.path,
                     session_name or "", tuple(_policies_of(conn, account_id, rules.ROLE,
                                                            name)),
                     session, tuple(tags.items()), temporary=True, expires_at=expires_at)
