"""Which key protects a new volume or snapshot: AWS's encryption rules in one place.

The answer names the key by role, so the caller resolves it: the source's own key (and
lineage: no data moves), the account's default EBS key in this region, or the key the
request named. `recode` says the blocks must be (re-)encrypted into a new lineage.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapferry.errors import ServiceError

SOURCE, DEFAULT, GIVEN = "source", "default", "given"


@dataclass(frozen=True)
class Outcome:
    encrypted: bool
    key: str | None  # SOURCE | DEFAULT | GIVEN, or None when unencrypted
    recode: bool  # the data must be encrypted anew (new lineage)


def kms_key_needs_encrypted(encrypted: bool | None, kms_key: str | None) -> None:
    if kms_key and not encrypted:
        raise ServiceError("InvalidParameterDependency",
                           "The parameter KmsKeyId requires the parameter Encrypted to be set.")


def for_new_data(encrypted: bool | None, kms_key: str | None,
                 by_default: bool) -> Outcome:
    """An empty volume, or a snapshot started from nothing."""
    if kms_key:
        return Outcome(True, GIVEN, False)
    if encrypted or by_default:
        return Outcome(True, DEFAULT, False)
    return Outcome(False, None, False)


def for_data_from(source_encrypted: bool, source_owned: bool, encrypted: bool | None,
                  kms_key: str | None, kms_key_is_source_key: bool,
                  by_default: bool) -> Outcome:
    """A volume (or copy) made from a snapshot.

    - An encrypted source always gives an encrypted result; nothing decrypts it.
    - Your own encrypted source keeps its key (and shares its blocks) unless another key is
      named; a shared one is re-encrypted under the default key, or the one named.
    - An unencrypted source stays unencrypted unless Encrypted or encryption by default
      asks otherwise; then it is encrypted under the named key or the default one.
    """
    if source_encrypted:
        if kms_key and not kms_key_is_source_key:
            return Outcome(True, GIVEN, True)
        if kms_key or source_owned:
            return Outcome(True, SOURCE, False)
        return Outcome(True, DEFAULT, True)
    if kms_key:
        return Outcome(True, GIVEN, True)
    if encrypted or by_default:
        return Outcome(True, DEFAULT, True)
    return Outcome(False, None, False)
