"""The policy evaluator, case by case: each row is a policy set, a request and the decision
AWS's evaluation logic gives (reference_policies_evaluation-logic.html, the condition
operator reference, KMS's "Determining access"). Then properties over random policy sets.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapferry.domain.policy import (
    Caller,
    Decision,
    Grant,
    Request,
    ResourcePolicy,
    caller_context,
    evaluate,
    kms_context,
    permission_list,
)
from snapferry.domain.policy_documents import Kind, PolicyDocument, parse_document

A, B = "111111111111", "222222222222"
SNAP = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
SNAP2 = "arn:aws:ec2:us-east-1::snapshot/snap-0fedcba987654321f"
IMAGE = "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET_HOME = "arn:aws:s3:::home"

CALLERS = {
    "rootA": (Caller(A, f"arn:aws:iam::{A}:root"), None),
    "rootB": (Caller(B, f"arn:aws:iam::{B}:root"), None),
    "alice": (Caller(A, f"arn:aws:iam::{A}:user/alice"), "alice"),
    "carol": (Caller(A, f"arn:aws:iam::{A}:user/ops/carol"), "carol"),
    "bob@B": (Caller(B, f"arn:aws:iam::{B}:user/bob"), "bob"),
    "session": (Caller(A, f"arn:aws:sts::{A}:assumed-role/Dev/s1",
                       role_arn=f"arn:aws:iam::{A}:role/Dev"), None),
    "session@B": (Caller(B, f"arn:aws:sts::{B}:assumed-role/Ops/s2"), None),
    "ec2": (Caller(A, "ec2.amazonaws.com", service="ec2.amazonaws.com"), None),
}
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def allow(action: Any = "*", resource: Any = "*", sid: str | None = None,
          **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", **extra}
    if "NotAction" not in extra:
        statement["Action"] = action
    if resource is not None:
        statement["Resource"] = resource
    if sid:
        statement["Sid"] = sid
    return statement


def deny(action: Any = "*", resource: Any = "*", sid: str | None = None,
         **extra: Any) -> dict[str, Any]:
    return {**allow(action, resource, sid, **extra), "Effect": "Deny"}


def when(operator: str, key: str, value: Any, action: Any = "*", effect: str = "Allow",
         **extra: Any) -> dict[str, Any]:
    """An Allow (or Deny) of `action` on everything under one condition."""
    statement = allow(action, Condition={operator: {key: value}}, **extra)
    statement["Effect"] = effect
    return statement


def principal(who: Any, action: Any = "*", effect: str = "Allow", sid: str | None = None,
              **extra: Any) -> dict[str, Any]:
    """A resource-policy statement naming `who` ({"AWS": ...}, {"Service": ...} or "*")."""
    statement = allow(action, sid=sid, Principal=who, **extra)
    statement["Effect"] = effect
    return statement


def case(name: str, expect: str, *, identity: list[Any] | None = None,
         session: list[Any] | None = None, resource_policy: dict[str, Any] | None = None,
         caller: str = "alice", action: str = "ec2:CopySnapshot", resource: str = SNAP,
         context: dict[str, Any] | None = None, matched: list[str] | None = None,
         missing: str | None = None, encryption_context: dict[str, str] | None = None,
         version: str = "2012-10-17") -> Any:
    """One row. identity/session: a list of policies, each a list of statements (a bare
    statement dict is a one-statement policy). resource_policy: owner, statements, grants,
    required (KMS), or permission_list."""
    row = dict(expect=expect, identity=identity or [], session=session,
               resource_policy=resource_policy, caller=caller, action=action,
               resource=resource, context=context or {}, matched=matched, missing=missing,
               encryption_context=encryption_context, version=version)
    return pytest.param(row, id=name)


def _document(statements: Any, kind: Kind, name: str, version: str) -> PolicyDocument:
    """The policy as the server reads a stored one: from its JSON text. Its strings are then
    other objects than this file's (interned) literals, so a rule comparing an operator's or
    effect's name by identity instead of value fails here as it would for a real request."""
    if isinstance(statements, dict):
        statements = [statements]
    text = json.dumps({"Version": version, "Statement": statements})
    return parse_document(json.loads(text), kind, name)


def run(row: dict[str, Any]) -> Decision:
    caller, username = CALLERS[row["caller"]]
    identity = [_document(p, Kind.IDENTITY, f"identity{i}", row["version"])
                for i, p in enumerate(row["identity"])]
    session = None if row["session"] is None else [
        _document(p, Kind.SESSION, f"session{i}", row["version"])
        for i, p in enumerate(row["session"])]
    resource = None
    spec = row["resource_policy"]
    if spec is not None and "permission_list" in spec:
        resource = permission_list(spec["owner"], ["ec2:CopySnapshot", "ec2:CreateVolume"],
                                   **spec["permission_list"])
    elif spec is not None:
        statements = _document(spec.get("statements", []), Kind.RESOURCE, "resource",
                               row["version"]).statements if spec.get("statements") else ()
        resource = ResourcePolicy(spec["owner"], statements, tuple(spec.get("grants", ())),
                                  required=spec.get("required", False))
    context = {**caller_context(caller, username=username,
                                tags={"team": "blue", "Project": "ferry"}),
               **kms_context(caller, row["encryption_context"]),
               "aws:CurrentTime": NOW, "aws:EpochTime": int(NOW.timestamp()),
               **row["context"]}
    request = Request(caller, row["action"], row["resource"], context,
                      row["encryption_context"])
    return evaluate(request, identity, resource, session)


OWN_KEY = {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
           "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}


def key_side(*statements: dict[str, Any], grants: tuple[Grant, ...] = ()) -> dict[str, Any]:
    return {"owner": A, "statements": list(statements), "grants": grants, "required": True}


CASES = [
    # ---- the three outcomes -------------------------------------------------------------
    case("nothing allows: implicit deny", "implicitDeny", missing="identity-based policy"),
    case("an allow allows", "allow", identity=[allow(sid="All")], matched=["All"]),
    case("deny beats allow in the same policy", "explicitDeny",
         identity=[[allow(sid="A1"), deny(sid="D1")]], matched=["D1"]),
    case("deny beats allow across policies", "explicitDeny",
         identity=[allow(), deny("ec2:CopySnapshot", SNAP, sid="NoCopy")], matched=["NoCopy"]),
    case("deny of another action leaves the allow", "allow",
         identity=[allow(), deny("ec2:DeleteSnapshot")]),
    case("deny on one snapshot beats allow on *", "explicitDeny",
         identity=[[allow("ec2:*"), deny("ec2:CopySnapshot", SNAP)]]),
    case("deny on one snapshot, another snapshot allowed", "allow",
         identity=[[allow("ec2:*"), deny("ec2:CopySnapshot", SNAP)]], resource=SNAP2),
    case("an account root may do anything in its own account", "allow", caller="rootA"),
    case("a resource-policy deny binds even the root", "explicitDeny", caller="rootA",
         resource_policy={"owner": A, "statements": [principal("*", effect="Deny")]}),
    case("a user with only a deny", "explicitDeny", identity=[deny()]),
    # ---- Action ---------------------------------------------------------------------------
    case("service wildcard", "allow", identity=[allow("ec2:*")]),
    case("prefix wildcard", "allow", identity=[allow("ec2:Copy*")]),
    case("prefix wildcard misses", "implicitDeny", identity=[allow("ec2:Describe*")]),
    case("? is one character", "allow", identity=[allow("ec2:CopySnap?hot")]),
    case("? is exactly one character", "implicitDeny", identity=[allow("ec2:CopySnapshot?")]),
    case("action names are case-insensitive", "allow", identity=[allow("EC2:copysnapshot")]),
    case("another service's wildcard", "implicitDeny", identity=[allow("kms:*")]),
    case("a list of actions is ORed", "allow",
         identity=[allow(["ec2:CreateVolume", "ec2:CopySnapshot"])]),
    case("NotAction allows what it does not name", "allow",
         identity=[allow(NotAction="iam:*")], action="ec2:CopySnapshot"),
    case("NotAction does not allow what it names", "implicitDeny",
         identity=[allow(NotAction="iam:*")], action="iam:CreateUser"),
    case("Deny with NotAction denies the rest", "explicitDeny",
         identity=[[allow(), deny(NotAction=["ec2:Describe*"])]], action="ec2:CopySnapshot"),
    case("Deny with NotAction spares what it names", "allow",
         identity=[[allow(), deny(NotAction=["ec2:Describe*"])]],
         action="ec2:DescribeSnapshots"),
    # ---- Resource -------------------------------------------------------------------------
    case("exact resource", "allow", identity=[allow(resource=SNAP)]),
    case("resource wildcard", "allow",
         identity=[allow(resource="arn:aws:ec2:*::snapshot/*")]),
    case("resource of another type", "implicitDeny",
         identity=[allow(resource="arn:aws:ec2:*::image/*")]),
    case("resource ? wildcard", "allow",
         identity=[allow(resource="arn:aws:ec2:us-east-?::snapshot/snap-*")]),
    case("resources are case-sensitive", "implicitDeny",
         identity=[allow(resource=SNAP.replace("/snap-", "/SNAP-"))]),
    case("a . in a resource pattern is only a dot", "implicitDeny",
         identity=[allow(resource="arn:aws:s3:::a.b/${aws:username}")],
         resource="arn:aws:s3:::axb/alice"),
    case("resource list is ORed", "allow", identity=[allow(resource=[IMAGE, SNAP])]),
    case("a specific resource does not match an action without resources", "implicitDeny",
         identity=[allow(resource=SNAP)], action="ec2:DescribeSnapshots", resource="*"),
    case("* matches an action without resources", "allow", identity=[allow()],
         action="ec2:DescribeSnapshots", resource="*"),
    case("NotResource allows the others", "allow",
         identity=[allow(resource=None, NotResource=IMAGE)]),
    case("NotResource does not allow what it names", "implicitDeny",
         identity=[allow(resource=None, NotResource=SNAP)]),
    case("Deny NotResource denies outside the list", "explicitDeny",
         identity=[[allow(), deny(resource=None, NotResource=[IMAGE])]]),
    case("Deny NotResource spares the list", "allow",
         identity=[[allow(), deny(resource=None, NotResource=[SNAP])]]),
    case("region in the resource decides", "implicitDeny",
         identity=[allow(resource="arn:aws:ec2:eu-*::snapshot/*")]),
    # ---- policy variables ---------------------------------------------------------------
    case("${aws:username} in a resource", "allow",
         identity=[allow("s3:GetObject", f"{BUCKET_HOME}/${{aws:username}}/*")],
         action="s3:GetObject", resource=f"{BUCKET_HOME}/alice/notes"),
    case("${aws:username} is someone else's folder", "implicitDeny",
         identity=[allow("s3:GetObject", f"{BUCKET_HOME}/${{aws:username}}/*")],
         action="s3:GetObject", resource=f"{BUCKET_HOME}/bob/notes"),
    case("a resource with a variable is case-sensitive too", "implicitDeny",
         identity=[allow("s3:GetObject", f"{BUCKET_HOME}/${{aws:username}}/*")],
         action="s3:GetObject", resource=f"{BUCKET_HOME}/ALICE/notes"),
    case("a missing variable makes the statement not match", "implicitDeny", caller="session",
         identity=[allow("s3:GetObject", f"{BUCKET_HOME}/${{aws:username}}/*")],
         action="s3:GetObject", resource=f"{BUCKET_HOME}//notes"),
    case("a missing variable leaves a Deny out too", "allow", caller="session",
         identity=[[allow(), deny(resource=f"{BUCKET_HOME}/${{aws:username}}")]],
         resource=f"{BUCKET_HOME}/"),
    case("a variable's value is literal, not a wildcard", "implicitDeny", caller="alice",
         identity=[allow(resource="arn:aws:s3:::${aws:PrincipalTag/prefix}")],
         context={"aws:PrincipalTag/prefix": "*"}, resource="arn:aws:s3:::anything"),
    case("a missing variable in NotResource leaves the Deny out", "allow", caller="session",
         identity=[[allow(), deny(resource=None, NotResource=f"{BUCKET_HOME}/${{aws:username}}")]],
         resource=SNAP),
    # A variable stands for one value: a key with several (aws:TagKeys) is no value, as if
    # missing; with exactly one it is that value.
    case("a variable naming a multi-valued key is no value", "implicitDeny",
         identity=[when("StringEquals", "aws:username", "${aws:TagKeys}")],
         context={"aws:TagKeys": ["alice", "zed"]}),
    case("a variable naming a key with one value is that value", "allow",
         identity=[when("StringEquals", "aws:username", "${aws:TagKeys}")],
         context={"aws:TagKeys": ["alice"]}),
    case("${*} is a literal star", "allow",
         identity=[allow(resource="arn:aws:s3:::b/${*}")], resource="arn:aws:s3:::b/*"),
    case("${*} is not a wildcard", "implicitDeny",
         identity=[allow(resource="arn:aws:s3:::b/${*}")], resource="arn:aws:s3:::b/x"),
    case("${?} and ${$} are literal", "allow",
         identity=[allow(resource="arn:aws:s3:::b/${?}${$}")], resource="arn:aws:s3:::b/?$"),
    case("a variable's default applies when it is missing", "allow", caller="session",
         identity=[allow(resource=f"{BUCKET_HOME}/${{aws:username, 'shared'}}")],
         resource=f"{BUCKET_HOME}/shared"),
    case("a variable's default is not used when it is present", "allow",
         identity=[allow(resource=f"{BUCKET_HOME}/${{aws:username, 'shared'}}")],
         resource=f"{BUCKET_HOME}/alice"),
    case("version 2008-10-17 takes ${...} literally", "implicitDeny", version="2008-10-17",
         identity=[allow(resource=f"{BUCKET_HOME}/${{aws:username}}")],
         resource=f"{BUCKET_HOME}/alice"),
    case("version 2008-10-17: ${...} matches itself, wildcards after it still match", "allow",
         version="2008-10-17",
         identity=[allow(resource=f"{BUCKET_HOME}/${{aws:username}}/*")],
         resource=f"{BUCKET_HOME}/${{aws:username}}/notes"),
    case("a principal tag variable in a condition", "allow",
         identity=[when("StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}")],
         context={"aws:ResourceTag/team": "blue"}),
    case("a principal tag variable in a condition, other team", "implicitDeny",
         identity=[when("StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team}")],
         context={"aws:ResourceTag/team": "red"}),
    case("a variable in StringLike", "allow",
         identity=[when("StringLike", "ec2:ResourceTag/owner", "${aws:username}-*")],
         context={"ec2:ResourceTag/owner": "alice-dev"}),
    case("* spans a newline next to a variable too", "allow",
         identity=[when("StringLike", "ec2:ResourceTag/owner", "${aws:username}-*")],
         context={"ec2:ResourceTag/owner": "alice-first\nsecond"}),
    case("a missing variable in a condition fails the test, negated too", "implicitDeny",
         caller="session",
         identity=[when("StringNotEquals", "aws:ResourceTag/owner", "${aws:username}")],
         context={"aws:ResourceTag/owner": "x"}),
    # ---- String operators ---------------------------------------------------------------
    case("StringEquals matches", "allow",
         identity=[when("StringEquals", "aws:RequestedRegion", "us-east-1")],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("StringEquals confines to a region", "implicitDeny",
         identity=[when("StringEquals", "aws:RequestedRegion", "us-east-1")],
         context={"aws:RequestedRegion": "eu-west-1"}),
    case("StringEquals is case-sensitive in values", "implicitDeny",
         identity=[when("StringEquals", "aws:RequestedRegion", "US-EAST-1")],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("condition keys are case-insensitive", "allow",
         identity=[when("StringEquals", "AWS:REQUESTEDREGION", "us-east-1")],
         context={"aws:requestedregion": "us-east-1"}),
    case("values of one key are ORed", "allow",
         identity=[when("StringEquals", "aws:RequestedRegion", ["eu-west-1", "us-east-1"])],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("keys under one operator are ANDed", "implicitDeny",
         identity=[allow(Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1",
                                                     "aws:ResourceTag/team": "blue"}})],
         context={"aws:RequestedRegion": "us-east-1", "aws:ResourceTag/team": "red"}),
    case("operators are ANDed", "implicitDeny",
         identity=[allow(Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"},
                                    "Bool": {"aws:SecureTransport": "true"}})],
         context={"aws:RequestedRegion": "us-east-1", "aws:SecureTransport": False}),
    case("StringEquals on a missing key is false", "implicitDeny",
         identity=[when("StringEquals", "aws:RequestTag/team", "blue")]),
    case("StringNotEquals with another value", "allow",
         identity=[when("StringNotEquals", "aws:RequestedRegion", "eu-west-1")],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("StringNotEquals with the value", "implicitDeny",
         identity=[when("StringNotEquals", "aws:RequestedRegion", "us-east-1")],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("StringNotEquals values are NORed", "implicitDeny",
         identity=[when("StringNotEquals", "aws:RequestedRegion", ["eu-west-1", "us-east-1"])],
         context={"aws:RequestedRegion": "us-east-1"}),
    case("StringNotEquals on a missing key is true", "allow",
         identity=[when("StringNotEquals", "aws:RequestTag/team", "red")]),
    case("Deny StringNotEquals region confines a user", "explicitDeny",
         identity=[[allow(), when("StringNotEquals", "aws:RequestedRegion", "us-east-1",
                                  effect="Deny")]],
         context={"aws:RequestedRegion": "eu-west-1"}),
    case("StringEqualsIgnoreCase", "allow",
         identity=[when("StringEqualsIgnoreCase", "aws:ResourceTag/team", "BLUE")],
         context={"aws:ResourceTag/team": "blue"}),
    case("StringEqualsIgnoreCase mismatch", "implicitDeny",
         identity=[when("StringEqualsIgnoreCase", "aws:ResourceTag/team", "RED")],
         context={"aws:ResourceTag/team": "blue"}),
    case("StringEqualsIgnoreCase with a value that sorts first", "implicitDeny",
         identity=[when("StringEqualsIgnoreCase", "aws:ResourceTag/team", "ALPHA")],
         context={"aws:ResourceTag/team": "blue"}),
    case("StringNotEqualsIgnoreCase ignores case", "implicitDeny",
         identity=[when("StringNotEqualsIgnoreCase", "aws:ResourceTag/team", "BLUE")],
         context={"aws:ResourceTag/team": "blue"}),
    case("StringNotEqualsIgnoreCase with another value", "allow",
         identity=[when("StringNotEqualsIgnoreCase", "aws:ResourceTag/team", "RED")],
         context={"aws:ResourceTag/team": "blue"}),
    case("StringEqualsIgnoreCase takes variables", "allow",
         identity=[when("StringEqualsIgnoreCase", "aws:ResourceTag/team",
                        "${aws:PrincipalTag/team}")],
         context={"aws:ResourceTag/team": "BLUE"}),
    case("StringNotEqualsIgnoreCase takes variables", "implicitDeny",
         identity=[when("StringNotEqualsIgnoreCase", "aws:ResourceTag/team",
                        "${aws:PrincipalTag/team}")],
         context={"aws:ResourceTag/team": "BLUE"}),
    case("StringNotEquals on a multi-valued key: no value may match", "implicitDeny",
         identity=[when("StringNotEquals", "aws:TagKeys", "team")],
         context={"aws:TagKeys": ["team", "name"]}),
    case("StringLike with *", "allow",
         identity=[when("StringLike", "aws:RequestedRegion", "us-*")],
         context={"aws:RequestedRegion": "us-west-2"}),
    case("StringLike with ?", "implicitDeny",
         identity=[when("StringLike", "aws:RequestedRegion", "us-east-?")],
         context={"aws:RequestedRegion": "us-east-10"}),
    case("StringLike is case-sensitive", "implicitDeny",
         identity=[when("StringLike", "aws:RequestedRegion", "US-*")],
         context={"aws:RequestedRegion": "us-west-2"}),
    case("StringNotLike takes variables", "implicitDeny",
         identity=[when("StringNotLike", "ec2:ResourceTag/owner", "${aws:username}-*")],
         context={"ec2:ResourceTag/owner": "alice-dev"}),
    case("StringNotLike", "allow",
         identity=[when("StringNotLike", "aws:RequestedRegion", "eu-*")],
         context={"aws:RequestedRegion": "us-west-2"}),
    case("StringNotLike with a match", "implicitDeny",
         identity=[when("StringNotLike", "aws:RequestedRegion", ["eu-*", "us-*"])],
         context={"aws:RequestedRegion": "us-west-2"}),
    # ---- ARN operators ------------------------------------------------------------------
    case("ArnEquals", "allow",
         identity=[when("ArnEquals", "aws:PrincipalArn", f"arn:aws:iam::{A}:user/alice")]),
    case("ArnEquals takes policy variables", "allow",
         identity=[when("ArnEquals", "aws:PrincipalArn",
                        "arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}")]),
    case("ArnNotLike takes policy variables", "allow",
         identity=[[allow(), when("ArnNotLike", "aws:PrincipalArn",
                                  "arn:aws:iam::${aws:PrincipalAccount}:user/*",
                                  effect="Deny")]]),
    case("ArnLike by part", "allow",
         identity=[when("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/*")]),
    case("ArnLike: * does not cross a colon", "implicitDeny",
         identity=[when("ArnLike", "aws:PrincipalArn", "arn:aws:*:user/alice")]),
    case("ArnLike on a value that is not an ARN", "implicitDeny",
         identity=[when("ArnLike", "aws:SourceArn", "arn:aws:s3:::*")],
         context={"aws:SourceArn": "not-an-arn"}),
    case("ArnLike: a part's * does not reach into the next part", "implicitDeny",
         identity=[when("ArnLike", "aws:SourceArn", "arn:aws:*:us-east-1:*:key/*")],
         context={"aws:SourceArn": f"arn:aws:kms:eu-west-1:{A}:us-east-1:1:key/k"}),
    case("aws:PrincipalArn of a session is its role's ARN", "allow", caller="session@B",
         identity=[when("ArnEquals", "aws:PrincipalArn", f"arn:aws:iam::{B}:role/Ops")]),
    case("ArnLike takes variables", "allow",
         identity=[when("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/${aws:username}")]),
    case("ArnLike is case-sensitive", "implicitDeny",
         identity=[when("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/ALICE")]),
    case("ArnNotEquals takes variables", "implicitDeny",
         identity=[when("ArnNotEquals", "aws:PrincipalArn",
                        "arn:aws:iam::*:user/${aws:username}")]),
    case("ArnNotEquals", "allow",
         identity=[when("ArnNotEquals", "aws:PrincipalArn", f"arn:aws:iam::{B}:root")]),
    case("ArnNotLike with a match", "implicitDeny",
         identity=[when("ArnNotLike", "aws:PrincipalArn", f"arn:aws:iam::{A}:user/*")]),
    case("ArnNotLike on a missing key is true", "allow",
         identity=[when("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::*")]),
    # ---- Bool ---------------------------------------------------------------------------
    case("Bool true", "allow", identity=[when("Bool", "aws:SecureTransport", "true")],
         context={"aws:SecureTransport": True}),
    case("Bool false against true", "implicitDeny",
         identity=[when("Bool", "aws:SecureTransport", "true")],
         context={"aws:SecureTransport": False}),
    case("Bool with a JSON boolean and ec2:Encrypted", "allow",
         identity=[when("Bool", "ec2:Encrypted", True)], context={"ec2:Encrypted": "true"}),
    case("Deny unencrypted: Bool false", "explicitDeny",
         identity=[[allow(), when("Bool", "ec2:Encrypted", "false", effect="Deny")]],
         context={"ec2:Encrypted": False}),
    case("Bool false against a true value", "implicitDeny",
         identity=[when("Bool", "ec2:Encrypted", "false")], context={"ec2:Encrypted": True}),
    case("Bool on a missing key is false", "implicitDeny",
         identity=[when("Bool", "aws:SecureTransport", "true")]),
    case("BoolIfExists on a missing key is true", "allow",
         identity=[when("BoolIfExists", "aws:SecureTransport", "true")]),
    # ---- Numeric ------------------------------------------------------------------------
    case("NumericEquals", "allow", identity=[when("NumericEquals", "ec2:VolumeSize", "100")],
         context={"ec2:VolumeSize": 100}),
    case("NumericEquals compares numbers, not text", "allow",
         identity=[when("NumericEquals", "ec2:VolumeSize", "100.0")],
         context={"ec2:VolumeSize": "100"}),
    case("NumericEquals with a smaller value", "implicitDeny",
         identity=[when("NumericEquals", "ec2:VolumeSize", "100")],
         context={"ec2:VolumeSize": 99}),
    case("NumericEquals with a larger value", "implicitDeny",
         identity=[when("NumericEquals", "ec2:VolumeSize", "100")],
         context={"ec2:VolumeSize": 101}),
    case("NumericNotEquals", "implicitDeny",
         identity=[when("NumericNotEquals", "ec2:VolumeSize", "100")],
         context={"ec2:VolumeSize": 100}),
    case("NumericLessThan", "allow", identity=[when("NumericLessThan", "ec2:VolumeSize", 200)],
         context={"ec2:VolumeSize": 100}),
    case("NumericLessThan at the bound", "implicitDeny",
         identity=[when("NumericLessThan", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 100}),
    case("NumericLessThanEquals at the bound", "allow",
         identity=[when("NumericLessThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 100}),
    case("NumericLessThanEquals below the bound", "allow",
         identity=[when("NumericLessThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 99}),
    case("NumericLessThanEquals above the bound", "implicitDeny",
         identity=[when("NumericLessThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 101}),
    case("NumericGreaterThanEquals above the bound", "allow",
         identity=[when("NumericGreaterThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 101}),
    case("NumericGreaterThanEquals below the bound", "implicitDeny",
         identity=[when("NumericGreaterThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 99}),
    case("Numeric values take no policy variables", "implicitDeny",
         identity=[when("NumericEquals", "ec2:VolumeSize", "${aws:PrincipalTag/limit}")],
         context={"ec2:VolumeSize": 100, "aws:PrincipalTag/limit": "100"}),
    case("NumericGreaterThan", "implicitDeny",
         identity=[when("NumericGreaterThan", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 100}),
    case("NumericGreaterThanEquals", "allow",
         identity=[when("NumericGreaterThanEquals", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 100}),
    case("NumericGreaterThan above the bound", "allow",
         identity=[when("NumericGreaterThan", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 101}),
    case("NumericGreaterThan below the bound", "implicitDeny",
         identity=[when("NumericGreaterThan", "ec2:VolumeSize", 100)],
         context={"ec2:VolumeSize": 99}),
    case("Numeric on text that is no number", "implicitDeny",
         identity=[when("NumericEquals", "ec2:VolumeSize", "100")],
         context={"ec2:VolumeSize": "big"}),
    case("NumericLessThan on aws:EpochTime", "allow",
         identity=[when("NumericLessThan", "aws:EpochTime", int(NOW.timestamp()) + 1)]),
    # ---- Date ---------------------------------------------------------------------------
    case("DateLessThan before the deadline", "allow",
         identity=[when("DateLessThan", "aws:CurrentTime", "2025-12-31T23:59:59Z")]),
    case("DateLessThan after the deadline", "implicitDeny",
         identity=[when("DateLessThan", "aws:CurrentTime", "2025-01-01T00:00:00Z")]),
    case("DateGreaterThan", "allow",
         identity=[when("DateGreaterThan", "aws:CurrentTime", "2025-01-01")]),
    case("DateGreaterThan a later instant", "implicitDeny",
         identity=[when("DateGreaterThan", "aws:CurrentTime", "2025-12-31")]),
    case("DateGreaterThanEquals at the instant", "allow",
         identity=[when("DateGreaterThanEquals", "aws:CurrentTime", "2025-06-01T12:00:00Z")]),
    case("DateLessThanEquals at the instant", "allow",
         identity=[when("DateLessThanEquals", "aws:CurrentTime", "2025-06-01T12:00:00Z")]),
    case("DateEquals with epoch seconds", "allow",
         identity=[when("DateEquals", "aws:CurrentTime", str(int(NOW.timestamp())))]),
    case("DateEquals a second after the policy's instant", "implicitDeny",
         identity=[when("DateEquals", "aws:CurrentTime", "2025-06-01T11:59:59Z")]),
    case("DateNotEquals at the instant", "implicitDeny",
         identity=[when("DateNotEquals", "aws:CurrentTime", "2025-06-01T12:00:00+00:00")]),
    case("Date with an offset", "allow",
         identity=[when("DateEquals", "aws:CurrentTime", "2025-06-01T14:00:00+02:00")]),
    case("Date in epoch seconds beyond any clock is no date", "implicitDeny",
         identity=[when("DateLessThan", "aws:CurrentTime", "1e300")]),
    case("Date in epoch seconds beyond year 9999 is no date", "implicitDeny",
         identity=[when("DateLessThan", "aws:CurrentTime", "99999999999999")]),
    case("a request time with an offset is the same instant", "allow",
         identity=[when("DateEquals", "aws:CurrentTime", "2025-06-01T12:00:00Z")],
         context={"aws:CurrentTime": dt.datetime(2025, 6, 1, 14, 0, tzinfo=dt.timezone(
             dt.timedelta(hours=2)))}),
    case("Date on text that is no date", "implicitDeny",
         identity=[when("DateLessThan", "aws:CurrentTime", "tomorrow")]),
    # ---- IP addresses -------------------------------------------------------------------
    case("IpAddress in the CIDR", "allow",
         identity=[when("IpAddress", "aws:SourceIp", "192.0.2.0/24")],
         context={"aws:SourceIp": "192.0.2.7"}),
    case("IpAddress outside the CIDR", "implicitDeny",
         identity=[when("IpAddress", "aws:SourceIp", "192.0.2.0/24")],
         context={"aws:SourceIp": "198.51.100.7"}),
    case("IpAddress single address", "allow",
         identity=[when("IpAddress", "aws:SourceIp", "203.0.113.9")],
         context={"aws:SourceIp": "203.0.113.9"}),
    case("IpAddress IPv6", "allow",
         identity=[when("IpAddress", "aws:SourceIp", ["192.0.2.0/24", "2001:db8::/32"])],
         context={"aws:SourceIp": "2001:db8::1"}),
    case("IpAddress on a value that is no address", "implicitDeny",
         identity=[when("IpAddress", "aws:SourceIp", "192.0.2.0/24")],
         context={"aws:SourceIp": "not-an-address"}),
    case("IpAddress against a policy value that is no network", "implicitDeny",
         identity=[when("IpAddress", "aws:SourceIp", "192.0.2.0/33")],
         context={"aws:SourceIp": "192.0.2.7"}),
    # A network written with host bits set is the network its prefix names (as Python's
    # ipaddress with strict=False, and CIDR readers generally, take it), not a refusal: a Deny
    # on NotIpAddress "10.1.2.3/8" must still spare 10.200.0.1 (README, "Permissions").
    case("IpAddress CIDR with host bits set", "allow",
         identity=[when("IpAddress", "aws:SourceIp", "192.0.2.77/24")],
         context={"aws:SourceIp": "192.0.2.7"}),
    case("Deny NotIpAddress with host bits set spares the network", "allow",
         identity=[[allow(), when("NotIpAddress", "aws:SourceIp", "10.1.2.3/8",
                                  effect="Deny")]],
         context={"aws:SourceIp": "10.200.0.1"}),
    case("NotIpAddress inside", "implicitDeny",
         identity=[when("NotIpAddress", "aws:SourceIp", "192.0.2.0/24")],
         context={"aws:SourceIp": "192.0.2.7"}),
    case("Deny NotIpAddress from outside", "explicitDeny",
         identity=[[allow(), when("NotIpAddress", "aws:SourceIp", "10.0.0.0/8",
                                  effect="Deny")]],
         context={"aws:SourceIp": "192.0.2.7"}),
    case("NotIpAddress on a missing key is true", "allow",
         identity=[when("NotIpAddress", "aws:SourceIp", "10.0.0.0/8")]),
    # ---- Null and IfExists --------------------------------------------------------------
    case("Null true: the key is absent", "allow",
         identity=[when("Null", "aws:RequestTag/team", "true")]),
    case("Null true: the key is present", "implicitDeny",
         identity=[when("Null", "aws:RequestTag/team", "true")],
         context={"aws:RequestTag/team": "blue"}),
    case("Null false: require a tag", "allow",
         identity=[when("Null", "aws:RequestTag/team", "false")],
         context={"aws:RequestTag/team": "blue"}),
    case("Null false: the key is absent", "implicitDeny",
         identity=[when("Null", "aws:RequestTag/team", "false")]),
    case("Deny Null false: tagged copies refused, an untagged one is not", "allow",
         identity=[[allow(), when("Null", "aws:RequestTag/team", "false", effect="Deny")]]),
    case("Deny Null true: untagged copies refused", "explicitDeny",
         identity=[[allow(), when("Null", "aws:RequestTag/team", "true", effect="Deny")]]),
    case("StringEqualsIfExists without the key", "allow",
         identity=[when("StringEqualsIfExists", "ec2:ResourceTag/team", "blue")]),
    case("StringEqualsIfExists with another value", "implicitDeny",
         identity=[when("StringEqualsIfExists", "ec2:ResourceTag/team", "blue")],
         context={"ec2:ResourceTag/team": "red"}),
    case("NumericLessThanIfExists with the key", "implicitDeny",
         identity=[when("NumericLessThanIfExists", "ec2:VolumeSize", 10)],
         context={"ec2:VolumeSize": 100}),
    case("ArnLikeIfExists without the key", "allow",
         identity=[when("ArnLikeIfExists", "aws:SourceArn", "arn:aws:s3:::*")]),
    # ---- set qualifiers -----------------------------------------------------------------
    case("ForAnyValue: one tag key listed", "allow",
         identity=[when("ForAnyValue:StringEquals", "aws:TagKeys", ["team", "cost"])],
         context={"aws:TagKeys": ["team", "name"]}),
    case("ForAnyValue: no tag key listed", "implicitDeny",
         identity=[when("ForAnyValue:StringEquals", "aws:TagKeys", ["team", "cost"])],
         context={"aws:TagKeys": ["name"]}),
    case("ForAnyValue on a missing key is false", "implicitDeny",
         identity=[when("ForAnyValue:StringEquals", "aws:TagKeys", "team")]),
    case("ForAnyValue on an empty key is false", "implicitDeny",
         identity=[when("ForAnyValue:StringLike", "aws:TagKeys", "*")],
         context={"aws:TagKeys": []}),
    case("ForAnyValue:StringNotEquals: some key not listed", "allow",
         identity=[when("ForAnyValue:StringNotEquals", "aws:TagKeys", ["team"])],
         context={"aws:TagKeys": ["team", "name"]}),
    case("ForAnyValue:StringNotEquals on a missing key is false", "implicitDeny",
         identity=[when("ForAnyValue:StringNotEquals", "aws:TagKeys", ["team"])]),
    case("ForAllValues: every tag key listed", "allow",
         identity=[when("ForAllValues:StringEquals", "aws:TagKeys", ["team", "cost"])],
         context={"aws:TagKeys": ["team", "cost"]}),
    case("ForAllValues: a tag key not listed", "implicitDeny",
         identity=[when("ForAllValues:StringEquals", "aws:TagKeys", ["team", "cost"])],
         context={"aws:TagKeys": ["team", "name"]}),
    case("ForAllValues on a missing key is true", "allow",
         identity=[when("ForAllValues:StringEquals", "aws:TagKeys", ["team"])]),
    case("ForAllValues:StringLike", "allow",
         identity=[when("ForAllValues:StringLike", "aws:TagKeys", ["team*", "cost"])],
         context={"aws:TagKeys": ["team-a", "cost"]}),
    case("ForAllValues:StringNotEquals: none of the reserved keys", "implicitDeny",
         identity=[when("ForAllValues:StringNotEquals", "aws:TagKeys", ["owner"])],
         context={"aws:TagKeys": ["team", "owner"]}),
    case("ForAnyValue:StringEqualsIfExists on a missing key is true", "allow",
         identity=[when("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", ["team"])]),
    case("a multi-valued key without a qualifier: any value", "allow",
         identity=[when("StringEquals", "aws:TagKeys", "team")],
         context={"aws:TagKeys": ["name", "team"]}),
    # ---- request and resource tags ------------------------------------------------------
    case("aws:RequestTag decides a tagged copy", "allow",
         identity=[when("StringEquals", "aws:RequestTag/team", "blue",
                        action=["ec2:CopySnapshot", "ec2:CopyImage"])],
         context={"aws:RequestTag/team": "blue"}),
    case("aws:RequestTag of another team", "implicitDeny",
         identity=[when("StringEquals", "aws:RequestTag/team", "blue")],
         context={"aws:RequestTag/team": "red"}),
    case("ec2:ResourceTag", "allow",
         identity=[when("StringEquals", "ec2:ResourceTag/env", "prod")],
         context={"ec2:ResourceTag/env": "prod", "aws:ResourceTag/env": "prod"}),
    case("aws:PrincipalTag", "allow",
         identity=[when("StringEquals", "aws:PrincipalTag/Project", "ferry")]),
    case("aws:PrincipalAccount", "implicitDeny",
         identity=[when("StringEquals", "aws:PrincipalAccount", B)]),
    case("aws:userid of a root is its account", "allow", caller="rootA",
         resource_policy=key_side(OWN_KEY | {"Condition": {"StringEquals": {"aws:userid": A}}}),
         action="kms:Decrypt", resource=KEY),
    # ---- resource policies: Principal and NotPrincipal ----------------------------------
    case("same account: a resource policy naming the user suffices", "allow",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:user/alice"}, sid="Alice")]},
         matched=["Alice"]),
    case("same account: naming the account needs the user's identity policy",
         "implicitDeny",
         resource_policy={"owner": A, "statements": [principal({"AWS": A})]}),
    case("Principal * allows anyone in the account", "allow",
         resource_policy={"owner": A, "statements": [principal("*")]}),
    case("Principal AWS * allows too", "allow",
         resource_policy={"owner": A, "statements": [principal({"AWS": "*"})]}),
    case("a principal of another user", "implicitDeny",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:user/ops/carol"})]}),
    case("a user with a path is named with it", "allow", caller="carol",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:user/ops/carol"})]}),
    case("a role ARN names its sessions", "allow", caller="session",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:role/Dev"})]}),
    case("a session ARN names the session", "allow", caller="session",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:sts::{A}:assumed-role/Dev/s1"})]}),
    case("another session of the role is not named", "implicitDeny", caller="session",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:sts::{A}:assumed-role/Dev/other"})]}),
    case("a service principal", "allow", caller="ec2",
         resource_policy={"owner": A, "statements": [
             principal({"Service": "ec2.amazonaws.com"})]}),
    case("a service principal of another service", "implicitDeny", caller="ec2",
         resource_policy={"owner": A, "statements": [
             principal({"Service": "backup.amazonaws.com"})]}),
    case("Deny NotPrincipal denies the others", "explicitDeny", caller="alice",
         identity=[allow()],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": [f"arn:aws:iam::{A}:user/ops/carol", A]}, effect="Deny",
                       principal_key="NotPrincipal")]}),
    case("Deny NotPrincipal spares the named user and account", "allow", caller="carol",
         identity=[allow()],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": [f"arn:aws:iam::{A}:user/ops/carol", A]}, effect="Deny",
                       principal_key="NotPrincipal")]}),
    case("Deny NotPrincipal naming only the user still denies it", "explicitDeny",
         caller="carol", identity=[allow()],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:user/ops/carol"}, effect="Deny",
                       principal_key="NotPrincipal")]}),
    # ---- cross-account ------------------------------------------------------------------
    case("cross-account: both sides allow", "allow", caller="bob@B",
         identity=[allow(sid="BobMayCopy")],
         resource_policy={"owner": A, "statements": [principal({"AWS": B}, sid="ShareB")]},
         matched=["ShareB", "BobMayCopy"]),
    case("cross-account: resource allows, identity does not", "implicitDeny", caller="bob@B",
         resource_policy={"owner": A, "statements": [principal({"AWS": B})]},
         missing="identity-based policy"),
    case("cross-account: identity allows, resource does not", "implicitDeny",
         caller="bob@B", identity=[allow()], resource_policy={"owner": A},
         missing="resource-based policy"),
    case("cross-account: naming the user still needs identity", "implicitDeny",
         caller="bob@B",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{B}:user/bob"})]}),
    case("cross-account: another account's root needs only the resource side", "allow",
         caller="rootB",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{B}:root"})]}),
    case("cross-account: a role of the account does not name its root", "implicitDeny",
         caller="rootB",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{B}:role/Ops"})]}),
    case("cross-account: only an iam root ARN names the account", "implicitDeny",
         caller="rootB",
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:sts::{B}:root"})]}),
    case("cross-account: a root not named", "implicitDeny", caller="rootB",
         resource_policy={"owner": A, "statements": [principal({"AWS": "333333333333"})]}),
    case("cross-account: a resource deny beats both allows", "explicitDeny", caller="bob@B",
         identity=[allow()],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": B}), principal({"AWS": B}, effect="Deny", sid="NoB")]}),
    case("createVolumePermission lists the account", "allow", caller="bob@B",
         identity=[allow("ec2:CopySnapshot")],
         resource_policy={"owner": A, "permission_list": {"account_ids": [B]}}),
    case("createVolumePermission lists another account", "implicitDeny", caller="bob@B",
         identity=[allow("ec2:CopySnapshot")],
         resource_policy={"owner": A, "permission_list": {"account_ids": ["333333333333"]}}),
    case("createVolumePermission group all", "allow", caller="session@B",
         identity=[allow()],
         resource_policy={"owner": A, "permission_list": {"everyone": True}}),
    case("a permission list allows only its actions", "implicitDeny", caller="rootB",
         action="ec2:DeleteSnapshot",
         resource_policy={"owner": A, "permission_list": {"account_ids": [B]}}),
    case("an empty permission list keeps others out", "implicitDeny", caller="rootB",
         resource_policy={"owner": A, "permission_list": {"account_ids": []}}),
    case("the owner needs no permission list", "allow", caller="rootA",
         resource_policy={"owner": A, "permission_list": {"account_ids": []}}),
    # ---- session policies ---------------------------------------------------------------
    case("session: both allow", "allow", caller="session", identity=[allow()],
         session=[allow("ec2:CopySnapshot", sid="Copy")], matched=[None, "Copy"]),
    case("session: the session policy does not allow", "implicitDeny", caller="session",
         identity=[allow()], session=[allow("ec2:Describe*")], missing="session policy"),
    case("session: the identity policy does not allow", "implicitDeny", caller="session",
         identity=[allow("ec2:Describe*")], session=[allow()],
         missing="identity-based policy"),
    case("session: a session deny", "explicitDeny", caller="session", identity=[allow()],
         session=[[allow(), deny("ec2:CopySnapshot", sid="NoCopy")]], matched=["NoCopy"]),
    case("session: a resource policy naming the session is not capped", "allow",
         caller="session", session=[allow("ec2:Describe*")],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:sts::{A}:assumed-role/Dev/s1"})]}),
    case("session: a resource policy naming the role is capped", "implicitDeny",
         caller="session", session=[allow("ec2:Describe*")],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{A}:role/Dev"})]}),
    case("session: a role named from its session ARN, across accounts", "allow",
         caller="session@B", identity=[allow()],
         resource_policy={"owner": A, "statements": [
             principal({"AWS": f"arn:aws:iam::{B}:role/Ops"})]}),
    case("session: no session policy caps nothing", "allow", caller="session",
         identity=[allow()]),
    case("session: cross-account role session", "allow", caller="session@B",
         identity=[allow()], session=[allow("ec2:CopySnapshot")],
         resource_policy={"owner": A, "permission_list": {"account_ids": [B]}}),
    # ---- KMS key policies and grants ----------------------------------------------------
    case("kms: the default policy lets the root", "allow", caller="rootA",
         action="kms:Decrypt", resource=KEY, resource_policy=key_side(OWN_KEY)),
    case("kms: a key policy not naming the account locks out even the root",
         "implicitDeny", caller="rootA", action="kms:Decrypt", resource=KEY,
         resource_policy=key_side(principal({"AWS": f"arn:aws:iam::{A}:user/alice"})),
         missing="resource-based policy"),
    case("kms: a key policy naming neither caller nor account is what is missing",
         "implicitDeny", action="kms:Decrypt", resource=KEY,
         resource_policy=key_side(principal({"AWS": f"arn:aws:iam::{A}:user/ops/carol"})),
         missing="resource-based policy"),
    case("kms: a session policy that does not allow is what is missing", "implicitDeny",
         caller="session", action="kms:Decrypt", resource=KEY, identity=[allow()],
         session=[allow("ec2:*")], resource_policy=key_side(principal({"AWS": B})),
         missing="session policy"),
    case("kms: the root statement delegates to IAM", "allow", action="kms:Decrypt",
         resource=KEY, identity=[allow("kms:Decrypt")], resource_policy=key_side(OWN_KEY)),
    case("kms: delegation needs the identity policy", "implicitDeny", action="kms:Decrypt",
         resource=KEY, resource_policy=key_side(OWN_KEY), missing="identity-based policy"),
    case("kms: IAM alone is not enough without the root statement", "implicitDeny",
         action="kms:Decrypt", resource=KEY, identity=[allow("kms:*")],
         resource_policy=key_side(principal({"AWS": f"arn:aws:iam::{A}:user/ops/carol"})),
         missing="resource-based policy"),
    case("kms: a key policy naming the user needs no IAM", "allow", action="kms:Decrypt",
         resource=KEY,
         resource_policy=key_side(principal({"AWS": f"arn:aws:iam::{A}:user/alice"}))),
    case("kms: another account named and its identity allows", "allow", caller="bob@B",
         action="kms:Decrypt", resource=KEY, identity=[allow("kms:Decrypt")],
         resource_policy=key_side(OWN_KEY, principal({"AWS": f"arn:aws:iam::{B}:root"}))),
    case("kms: another account named, no identity policy", "implicitDeny", caller="bob@B",
         action="kms:Decrypt", resource=KEY,
         resource_policy=key_side(OWN_KEY, principal({"AWS": f"arn:aws:iam::{B}:root"}))),
    case("kms: kms:CallerAccount condition", "allow", caller="rootA", action="kms:Encrypt",
         resource=KEY, resource_policy=key_side(principal(
             {"AWS": "*"}, Condition={"StringEquals": {"kms:CallerAccount": A}}))),
    case("kms: kms:CallerAccount of another account", "implicitDeny", caller="rootB",
         action="kms:Encrypt", resource=KEY, resource_policy=key_side(principal(
             {"AWS": "*"}, Condition={"StringEquals": {"kms:CallerAccount": A}}))),
    case("kms: kms:ViaService", "allow", caller="rootA", action="kms:Decrypt", resource=KEY,
         context={"kms:ViaService": "ec2.us-east-1.amazonaws.com"},
         resource_policy=key_side(principal({"AWS": A}, Condition={
             "StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}))),
    case("kms: kms:ViaService missing", "implicitDeny", caller="rootA", action="kms:Decrypt",
         resource=KEY, resource_policy=key_side(principal({"AWS": A}, Condition={
             "StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}))),
    case("kms: kms:EncryptionContext condition", "allow", caller="rootA",
         action="kms:Decrypt", resource=KEY, encryption_context={"lineage": "l-1"},
         resource_policy=key_side(principal({"AWS": A}, Condition={
             "StringEquals": {"kms:EncryptionContext:lineage": "l-1"}}))),
    case("kms: a grant lets another account decrypt", "allow", caller="rootB",
         action="kms:Decrypt", resource=KEY, resource_policy=key_side(OWN_KEY, grants=(
             Grant(f"arn:aws:iam::{B}:root", frozenset({"Decrypt"}), grant_id="g1"),))),
    case("kms: a grant allows only its operations", "implicitDeny", caller="rootB",
         action="kms:Encrypt", resource=KEY, resource_policy=key_side(OWN_KEY, grants=(
             Grant(f"arn:aws:iam::{B}:root", frozenset({"Decrypt"})),))),
    case("kms: a grant to a user needs no identity policy", "allow", caller="bob@B",
         action="kms:Decrypt", resource=KEY, resource_policy=key_side(OWN_KEY, grants=(
             Grant(f"arn:aws:iam::{B}:user/bob", frozenset({"Decrypt"})),))),
    case("kms: a grant's EncryptionContextEquals", "implicitDeny", caller="rootB",
         action="kms:Decrypt", resource=KEY, encryption_context={"a": "1", "b": "2"},
         resource_policy=key_side(OWN_KEY, grants=(Grant(
             f"arn:aws:iam::{B}:root", frozenset({"Decrypt"}), context_equals={"a": "1"}),))),
    case("kms: a grant's EncryptionContextSubset", "allow", caller="rootB",
         action="kms:Decrypt", resource=KEY, encryption_context={"a": "1", "b": "2"},
         resource_policy=key_side(OWN_KEY, grants=(Grant(
             f"arn:aws:iam::{B}:root", frozenset({"Decrypt"}), context_subset={"a": "1"}),))),
    case("kms: a grant's EncryptionContextSubset not met", "implicitDeny", caller="rootB",
         action="kms:Decrypt", resource=KEY, encryption_context={"a": "2"},
         resource_policy=key_side(OWN_KEY, grants=(Grant(
             f"arn:aws:iam::{B}:root", frozenset({"Decrypt"}), context_subset={"a": "1"}),))),
    case("kms: a grant to an account delegates to its identity policies", "implicitDeny",
         caller="bob@B", action="kms:Decrypt", resource=KEY,
         resource_policy=key_side(OWN_KEY, grants=(
             Grant(f"arn:aws:iam::{B}:root", frozenset({"Decrypt"})),))),
    case("kms: a grant to an account, with the identity policy", "allow",
         caller="bob@B", action="kms:Decrypt", resource=KEY, identity=[allow("kms:Decrypt")],
         resource_policy=key_side(OWN_KEY, grants=(
             Grant(f"arn:aws:iam::{B}:root", frozenset({"Decrypt"})),))),
    case("kms: a key policy deny beats a grant", "explicitDeny", caller="rootB",
         action="kms:Decrypt", resource=KEY, resource_policy=key_side(
             OWN_KEY, principal({"AWS": B}, "kms:Decrypt", effect="Deny"), grants=(
                 Grant(f"arn:aws:iam::{B}:root", frozenset({"Decrypt"})),))),
]


def _rewrite_principal_key(row: dict[str, Any]) -> None:
    """`principal_key="NotPrincipal"` in a statement builder moves Principal there."""
    spec = row["resource_policy"]
    for statement in (spec or {}).get("statements", []):
        key = statement.pop("principal_key", None)
        if key:
            statement[key] = statement.pop("Principal")


@pytest.mark.parametrize("row", CASES)
def test_policy_case(row: dict[str, Any]) -> None:
    _rewrite_principal_key(row)
    decision = run(row)
    assert decision.effect.value == row["expect"], decision
    if row["matched"] is not None:
        assert [m.sid for m in decision.matched] == row["matched"]
    if row["missing"] is not None:
        assert decision.missing is not None and decision.missing.value == row["missing"]


def test_there_are_at_least_100_cases() -> None:
    assert len(CASES) >= 100


def test_the_reason_reads_as_aws_writes_it() -> None:
    by_identity = run(CASES[2].values[0])
    assert by_identity.reason == "with an explicit deny in an identity-based policy"
    by_resource = run(CASES[8].values[0])
    assert by_resource.reason == "with an explicit deny in a resource-based policy"
    nothing = run(CASES[0].values[0])
    assert nothing.reason == "because no identity-based policy allows the ec2:CopySnapshot action"
    assert run(CASES[1].values[0]).reason == "allowed"


# ---- properties over random policy sets ----------------------------------------------------

_ACTIONS = ["*", "ec2:*", "ec2:CopySnapshot", "ec2:Copy*", "ec2:Describe*", "kms:Decrypt",
            "kms:*", "iam:*"]
_RESOURCES = ["*", SNAP, SNAP2, "arn:aws:ec2:*::snapshot/*", IMAGE, KEY]
_CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
    {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}},
    {"ForAnyValue:StringLike": {"aws:TagKeys": ["te*"]}},
    {"Null": {"aws:RequestTag/team": "true"}},
    {"StringEqualsIfExists": {"aws:RequestTag/team": "blue"}},
]
_PRINCIPALS: list[Any] = ["*", {"AWS": A}, {"AWS": B}, {"AWS": f"arn:aws:iam::{A}:user/alice"},
                          {"AWS": f"arn:aws:iam::{B}:user/bob"},
                          {"AWS": f"arn:aws:iam::{A}:role/Dev"}]


@st.composite
def statements(draw: st.DrawFn, resource_side: bool = False,
               actions: list[str] = _ACTIONS) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    statement["NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action"] = \
        draw(st.lists(st.sampled_from(actions), min_size=1, max_size=2))
    statement["NotResource" if draw(st.booleans()) and draw(st.booleans()) else "Resource"] = \
        draw(st.lists(st.sampled_from(_RESOURCES), min_size=1, max_size=2))
    condition = draw(st.sampled_from(_CONDITIONS))
    if condition:
        statement["Condition"] = condition
    if resource_side:
        statement["Principal"] = draw(st.sampled_from(_PRINCIPALS))
    return statement


_policy = st.lists(statements(), min_size=1, max_size=3)


@st.composite
def situations(draw: st.DrawFn) -> dict[str, Any]:
    resource = None
    if draw(st.booleans()):
        resource = {"owner": draw(st.sampled_from([A, B])),
                    "statements": draw(st.lists(statements(resource_side=True), max_size=3)),
                    "required": draw(st.booleans())}
    return dict(
        expect=None, caller=draw(st.sampled_from(sorted(CALLERS))),
        identity=draw(st.lists(_policy, max_size=2)),
        session=draw(st.one_of(st.none(), st.lists(_policy, max_size=1))),
        resource_policy=resource, matched=None, missing=None, encryption_context=None,
        version="2012-10-17",
        action=draw(st.sampled_from(["ec2:CopySnapshot", "ec2:DescribeSnapshots",
                                     "kms:Decrypt", "iam:CreateUser"])),
        resource=draw(st.sampled_from([SNAP, SNAP2, KEY, "*"])),
        context={"aws:RequestedRegion": draw(st.sampled_from(["us-east-1", "eu-west-1"])),
                 "aws:SecureTransport": draw(st.booleans()),
                 "aws:TagKeys": draw(st.lists(st.sampled_from(["team", "cost"]), max_size=2)),
                 "aws:RequestTag/team": draw(st.sampled_from([None, "blue", "red"]))})


def _with_identity_statement(row: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    return {**row, "identity": [*row["identity"], [statement]]}


@settings(max_examples=150, deadline=None)
@given(situations())
def test_a_matching_deny_always_denies(row: dict[str, Any]) -> None:
    assert run(_with_identity_statement(row, deny())).effect.value == "explicitDeny"


@settings(max_examples=150, deadline=None)
@given(situations(), statements())
def test_adding_a_deny_never_allows(row: dict[str, Any], extra: dict[str, Any]) -> None:
    extra = {**extra, "Effect": "Deny"}
    if not run(row).allowed:
        assert not run(_with_identity_statement(row, extra)).allowed
    if row["session"] is not None:  # in a session policy too
        assert run({**row, "session": [*row["session"], [extra]]}).allowed <= run(row).allowed


@settings(max_examples=150, deadline=None)
@given(situations(), statements())
def test_adding_an_allow_never_denies(row: dict[str, Any], extra: dict[str, Any]) -> None:
    extra = {**extra, "Effect": "Allow"}
    if run(row).allowed:
        assert run(_with_identity_statement(row, extra)).allowed


@settings(max_examples=150, deadline=None)
@given(situations(), statements(actions=["sqs:*", "s3:GetObject", "ec2:RunInstances"]),
       statements(resource_side=True, actions=["sqs:*", "s3:GetObject"]))
def test_an_unrelated_statement_changes_nothing(row: dict[str, Any], extra: dict[str, Any],
                                                on_resource: dict[str, Any]) -> None:
    if "NotAction" in extra or "NotAction" in on_resource:
        return  # NotAction of another service is related to everything
    before = run(row).effect
    assert run(_with_identity_statement(row, extra)).effect == before
    if row["resource_policy"] is not None:
        spec = row["resource_policy"]
        widened = {**spec, "statements": [*spec["statements"], on_resource]}
        assert run({**row, "resource_policy": widened}).effect == before


@settings(max_examples=100, deadline=None)
@given(situations(), st.randoms(use_true_random=False))
def test_statement_order_does_not_matter(row: dict[str, Any], random: Any) -> None:
    before = run(row).effect
    shuffled = [random.sample(p, len(p)) for p in row["identity"]]
    random.shuffle(shuffled)
    assert run({**row, "identity": shuffled}).effect == before


# ---- the interface handlers call ------------------------------------------------------------

def test_decide_reads_what_a_handler_passes() -> None:
    from snapferry.domain.accounts import Principal
    from snapferry.domain.policy import authorize, decide

    root_a = Principal(A, "test")
    assert authorize(root_a, "ec2:CopySnapshot", [SNAP])  # its own account, no policy
    shared = permission_list(B, ["ec2:CopySnapshot"], [A])
    assert authorize(root_a, "ec2:CopySnapshot", [SNAP], {"resource_policy": shared})
    unshared = permission_list(B, ["ec2:CopySnapshot"], ["333333333333"])
    refused = decide(root_a, "ec2:CopySnapshot", [SNAP, SNAP2], {"resource_policy": unshared})
    assert (refused.effect.value, refused.resource) == ("implicitDeny", SNAP)
    assert refused.reason == (
        "because no resource-based policy allows the ec2:CopySnapshot action")
    regional = ResourcePolicy(B, _document([principal({"AWS": A}, Condition={
        "StringEquals": {"aws:RequestedRegion": "us-east-1"}})], Kind.RESOURCE, "r",
        "2012-10-17").statements)
    for region, allowed in (("us-east-1", True), ("eu-west-1", False)):
        assert authorize(root_a, "ec2:CopySnapshot", [SNAP], {
            "resource_policy": regional, "conditions": {"aws:RequestedRegion": region}}) is allowed
    denying = _document(deny("ec2:CopySnapshot", SNAP2, sid="NotThat"), Kind.IDENTITY,
                        "mine", "2012-10-17")
    decision = decide(root_a, "ec2:CopySnapshot", [SNAP, SNAP2],
                      {"identity_policies": [denying]})
    assert decision.effect.value == "explicitDeny" and decision.resource == SNAP2
    assert decision.matched[0].policy == "mine" and decision.matched[0].sid == "NotThat"
