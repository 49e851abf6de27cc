from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipyard.registry.aliases import AliasMove, rollback_targets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def move(i: int, to: str | None, action: str = "promote") -> AliasMove:
    return AliasMove("m", "champion", None, to, action, False, "", "a", T0 + timedelta(hours=i))


def test_promotions_push_the_stack() -> None:
    assert rollback_targets([move(0, "1"), move(1, "2"), move(2, "3")]) == ["1", "2", "3"]


def test_rollbacks_walk_back_instead_of_flipping() -> None:
    moves = [move(0, "1"), move(1, "2"), move(2, "3"), move(3, "2", "rollback")]
    assert rollback_targets(moves) == ["1", "2"]
    moves.append(move(4, "1", "rollback"))
    assert rollback_targets(moves) == ["1"]


def test_repromoting_an_old_champion_moves_it_to_the_top() -> None:
    moves = [move(0, "1"), move(1, "2"), move(2, "1")]
    assert rollback_targets(moves) == ["2", "1"]


def test_removing_the_alias_clears_the_stack() -> None:
    assert rollback_targets([move(0, "1"), move(1, None), move(2, "4")]) == ["4"]
