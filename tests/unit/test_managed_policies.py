"""AWS managed policies (domain/managed_policies.py): their ARNs, ids, versions and dates, and
that each document is one IAM accepts and grants what its name says, without a server."""

from __future__ import annotations

import datetime as dt
import json
import re

from snapferry.domain import managed_policies
from snapferry.domain.accounts import USER, Principal
from snapferry.domain.policy import authorize
from snapferry.domain.policy_documents import MANAGED_POLICY_MAX, Kind, parse_document

NAMES = ("AdministratorAccess", "ReadOnlyAccess", "AmazonEC2FullAccess",
         "AmazonEC2ReadOnlyAccess")


def _user_with(name: str) -> Principal:
    text = managed_policies.document(managed_policies.arn_of(name))
    assert text is not None
    return Principal(account_id="111122223333", access_key_id="AKIAUSER", kind=USER,
                     name="alice", unique_id="AIDAALICE",
                     policies=(parse_document(text, Kind.IDENTITY, name, MANAGED_POLICY_MAX),))


def test_every_managed_policy_is_named_by_its_aws_arn() -> None:
    assert managed_policies.arn_of("ReadOnlyAccess") == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    known = managed_policies.managed()
    assert sorted(known) == sorted(f"arn:aws:iam::aws:policy/{n}" for n in NAMES)
    for arn, policy in known.items():
        assert policy.arn == arn
        assert policy.aws_managed
        assert policy.path == "/"
        assert policy.default_version == "v1"
        assert policy.attachments == 0
        assert policy.description


def test_a_managed_policy_id_is_anpa_and_sixteen_letters_of_its_name() -> None:
    ids = {p.name: p.policy_id for p in managed_policies.managed().values()}
    # Shorter names are padded with X, longer ones cut at 16: every id is 20 characters.
    assert ids["ReadOnlyAccess"] == "ANPAREADONLYACCESSXX"
    assert ids["AmazonEC2ReadOnlyAccess"] == "ANPAAMAZONEC2READONL"
    assert ids["AdministratorAccess"] == "ANPAADMINISTRATORACC"
    assert all(re.fullmatch(r"ANPA[A-Z0-9]{16}", i) for i in ids.values())
    assert len(set(ids.values())) == len(ids)


def test_a_managed_policy_was_created_and_last_updated_at_one_fixed_instant() -> None:
    instant = dt.datetime(2015, 2, 6, 18, 39, 46, tzinfo=dt.UTC)
    for policy in managed_policies.managed().values():
        assert policy.created == instant
        assert policy.updated == instant


def test_an_unknown_arn_has_no_document() -> None:
    assert managed_policies.document("arn:aws:iam::aws:policy/PowerUserAccess") is None
    assert managed_policies.document("arn:aws:iam::111122223333:policy/ReadOnlyAccess") is None
    assert managed_policies.document("ReadOnlyAccess") is None


def test_every_document_is_a_valid_identity_policy_within_the_size_limit() -> None:
    for name in NAMES:
        text = managed_policies.document(managed_policies.arn_of(name))
        assert text is not None
        document = parse_document(text, Kind.IDENTITY, name, MANAGED_POLICY_MAX)
        assert document.version == "2012-10-17"
        assert json.loads(text)["Statement"]


def test_each_document_grants_what_its_name_says() -> None:
    snapshot = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
    admin = _user_with("AdministratorAccess")
    assert authorize(admin, "iam:DeleteUser", ["*"])
    assert authorize(admin, "ec2:CopySnapshot", [snapshot])

    read_only = _user_with("ReadOnlyAccess")
    assert authorize(read_only, "ec2:DescribeSnapshots", ["*"])
    assert authorize(read_only, "ebs:ListSnapshotBlocks", [snapshot])
    assert authorize(read_only, "sts:GetCallerIdentity", ["*"])
    assert not authorize(read_only, "ec2:CopySnapshot", [snapshot])
    assert not authorize(read_only, "ebs:GetSnapshotBlock", [snapshot])
    assert not authorize(read_only, "kms:Decrypt", ["*"])

    ec2_full = _user_with("AmazonEC2FullAccess")
    assert authorize(ec2_full, "ec2:CopySnapshot", [snapshot])
    assert not authorize(ec2_full, "kms:CreateKey", ["*"])
    assert not authorize(ec2_full, "iam:CreateUser", ["*"])
    # A service-linked role only for the services the condition lists.
    linked = "iam:CreateServiceLinkedRole"
    assert authorize(ec2_full, linked, ["*"],
                     {"conditions": {"iam:AWSServiceName": "spot.amazonaws.com"}})
    assert not authorize(ec2_full, linked, ["*"],
                         {"conditions": {"iam:AWSServiceName": "rds.amazonaws.com"}})

    ec2_read = _user_with("AmazonEC2ReadOnlyAccess")
    assert authorize(ec2_read, "ec2:DescribeImages", ["*"])
    assert not authorize(ec2_read, "ec2:CreateTags", [snapshot])
    assert not authorize(ec2_read, "iam:ListUsers", ["*"])
