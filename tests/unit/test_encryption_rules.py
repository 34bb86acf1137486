"""AWS's encryption matrix for new volumes and snapshots, exhaustively: an encrypted source
never yields an unencrypted result, whatever is asked."""

from __future__ import annotations

import itertools

import pytest

from snapferry.domain import encryption as rules
from snapferry.errors import ServiceError


@pytest.mark.parametrize("owned,encrypted,kms,same,by_default", list(itertools.product(
    [True, False], [None, True, False], [None, "k"], [True, False], [True, False])))
def test_encrypted_sources_stay_encrypted(owned: bool, encrypted: bool | None, kms: str | None,
                                          same: bool, by_default: bool) -> None:
    outcome = rules.for_data_from(True, owned, encrypted, kms, same and kms is not None,
                                  by_default)
    assert outcome.encrypted


def test_the_matrix() -> None:
    f = rules.for_data_from
    assert f(True, True, None, None, False, False) == rules.Outcome(True, rules.SOURCE, False)
    assert f(True, False, None, None, False, False) == rules.Outcome(True, rules.DEFAULT, True)
    assert f(True, True, True, "k", False, False) == rules.Outcome(True, rules.GIVEN, True)
    assert f(True, False, True, "k", True, False) == rules.Outcome(True, rules.SOURCE, False)
    assert f(False, True, None, None, False, False) == rules.Outcome(False, None, False)
    assert f(False, True, None, None, False, True) == rules.Outcome(True, rules.DEFAULT, True)
    assert f(False, True, True, None, False, False) == rules.Outcome(True, rules.DEFAULT, True)
    assert f(False, True, True, "k", False, False) == rules.Outcome(True, rules.GIVEN, True)
    n = rules.for_new_data
    assert n(None, None, False) == rules.Outcome(False, None, False)
    assert n(None, None, True) == rules.Outcome(True, rules.DEFAULT, False)
    assert n(True, "k", False) == rules.Outcome(True, rules.GIVEN, False)


def test_a_key_without_encrypted_is_refused() -> None:
    with pytest.raises(ServiceError) as caught:
        rules.kms_key_needs_encrypted(None, "alias/x")
    assert caught.value.code == "InvalidParameterDependency"
    rules.kms_key_needs_encrypted(True, "alias/x")
