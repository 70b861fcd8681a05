"""The refresh marker: durable with the caller's transaction, taken atomically, wakes after commit."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.scheduling.refresh import (
    add_wakeup,
    pending_refresh,
    remove_wakeup,
    request_refresh,
    take_refresh,
)


def test_request_is_durable_and_taken_once(engine: Engine) -> None:
    with Session(engine) as session:
        request_refresh(session, reason="campaign 1 approved")
        request_refresh(session, reason="campaign 2 paused")
        session.commit()
    with Session(engine) as session:
        marker = pending_refresh(session)
        assert marker is not None
        assert marker.holder == "campaign 2 paused"
        assert take_refresh(session) is True
        assert take_refresh(session) is False
        session.commit()
        assert pending_refresh(session) is None


def test_rolled_back_request_asks_nothing_and_wakes_nobody(engine: Engine) -> None:
    woken: list[int] = []

    def wake() -> None:
        woken.append(1)

    add_wakeup(wake)
    try:
        with Session(engine) as session:
            request_refresh(session, reason="abandoned")
            session.rollback()
            session.commit()
        assert woken == []
        with Session(engine) as session:
            assert pending_refresh(session) is None
            request_refresh(session, reason="kept")
            assert woken == []
            session.commit()
        assert woken == [1]
    finally:
        remove_wakeup(wake)
