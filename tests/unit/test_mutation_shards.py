"""The mutation runner's --shard split (tests/mutation/run.py): N shards, each initialised in
a session of its own (with its own random job ids), must between them test every mutant of
the module exactly once, whatever order each session lists them in."""

from __future__ import annotations

import random

from tests.mutation.run import in_shard

KEYS = [("snapferry/engine/copier.py", (line, col), (line, col + 2), operator, occurrence)
        for line in range(1, 40) for col in (4, 8)
        for operator in ("core/NumberReplacer", "core/ReplaceComparisonOperator_Eq_NotEq")
        for occurrence in range(2)]


def test_the_shards_split_the_mutants_with_none_left_out_and_none_twice() -> None:
    for count in (1, 2, 3, 7):
        shards = [in_shard(KEYS, (number, count)) for number in range(1, count + 1)]
        assert set().union(*shards) == set(KEYS)
        assert sum(len(shard) for shard in shards) == len(KEYS)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_each_session_lists_its_mutants_in_its_own_order_and_gets_the_same_shard() -> None:
    shuffled = KEYS.copy()
    random.Random(7).shuffle(shuffled)
    for number in (1, 2, 3):
        assert in_shard(shuffled, (number, 3)) == in_shard(KEYS, (number, 3))
