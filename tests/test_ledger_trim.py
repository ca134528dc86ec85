"""The runner keeps the newest finished turns, never an unfinished one."""

from __future__ import annotations

from zeta_desktop.core.chat import ledger as ledger_module
from zeta_desktop.core.chat.events import TurnEnded
from zeta_desktop.core.chat.ledger import TurnLedger
from zeta_desktop.core.chat.turn import TurnStatus


def test_old_finished_turns_are_forgotten_in_batches_and_running_ones_kept(
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ledger_module, "KEPT_FINISHED", 10)
    monkeypatch.setattr(ledger_module, "TRIM_EVERY", 5)
    ended: list[int] = []
    ledger = TurnLedger(lambda e: ended.append(e.turn_id) if isinstance(e, TurnEnded) else None,
                        clock=lambda: 0.0)
    running = ledger.new("still streaming", list)  # the oldest, and never ended
    running.status = TurnStatus.STREAMING
    turns = [ledger.new(f"prompt {i}", list) for i in range(20)]
    for turn in turns:
        ledger.end(turn, TurnStatus.DONE)
    kept = {t.turn_id for t in ledger.all()}
    assert running.turn_id in kept
    assert len(kept) <= 10 + 5 + 1
    assert {t.turn_id for t in turns[-10:]} <= kept  # the newest finished ones stay
    assert turns[0].turn_id not in kept
    assert ended == [t.turn_id for t in turns]  # every end was told, trimmed or not
    late = ledger.new("one more", list)
    ledger.end(running, TurnStatus.DONE)  # the oldest ends last: it is still looked up
    assert ledger.get(running.turn_id) is running and ledger.get(late.turn_id) is late


