"""Presence on both databases: transitions, conditional offline, batched last-seen, sweep, summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from broadcast.dispatch import presence
from broadcast.dispatch.models import PresenceEvent
from broadcast.dispatch.presence import Reason
from broadcast.regions.models import Endpoint, EndpointStatus
from tests import builders

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _events(session: Session, endpoint: Endpoint) -> list[tuple[str, str | None, str | None]]:
    query = select(PresenceEvent).where(PresenceEvent.endpoint_id == endpoint.id)
    rows = session.exec(query.order_by(col(PresenceEvent.at), col(PresenceEvent.id))).all()
    return [(row.state.value, row.reason, row.address) for row in rows]


def _endpoint(session: Session, status: EndpointStatus = EndpointStatus.offline) -> Endpoint:
    village = builders.make_village(session, town=builders.make_town(session))
    return builders.make_endpoint(session, village=village, status=status)


def test_connect_and_disconnect_record_each_change_once(session: Session) -> None:
    endpoint = _endpoint(session)
    assert presence.mark_online(session, endpoint_id=endpoint.id or 0, address="10.0.0.5", at=T0)
    assert not presence.mark_online(session, endpoint_id=endpoint.id or 0, address="10.0.0.5", at=T0)
    assert presence.mark_online(session, endpoint_id=endpoint.id or 0, address="10.0.0.9", at=T0)
    later = T0 + timedelta(seconds=30)
    assert presence.mark_offline(
        session, endpoint_id=endpoint.id or 0, last_frame_at=later, reason=Reason.closed
    )
    assert not presence.mark_offline(
        session, endpoint_id=endpoint.id or 0, last_frame_at=later, reason=Reason.closed
    )
    session.commit()
    session.refresh(endpoint)
    assert (endpoint.status, endpoint.address, endpoint.last_seen_at) == (
        EndpointStatus.offline,
        "10.0.0.9",
        later,
    )
    assert _events(session, endpoint) == [
        ("online", "connected", "10.0.0.5"),
        ("online", "connected", "10.0.0.9"),
        ("offline", "closed", "10.0.0.9"),
    ]


def test_old_connection_ending_after_a_newer_one_does_not_mark_offline(session: Session) -> None:
    """The device already reconnected (to another gateway) after the old connection's last frame."""
    endpoint = _endpoint(session)
    presence.mark_online(session, endpoint_id=endpoint.id or 0, address="a", at=T0)
    presence.mark_online(session, endpoint_id=endpoint.id or 0, address="b", at=T0 + timedelta(seconds=70))
    stale = T0 + timedelta(seconds=10)
    assert not presence.mark_offline(
        session, endpoint_id=endpoint.id or 0, last_frame_at=stale, reason=Reason.timeout
    )
    session.commit()
    session.refresh(endpoint)
    assert endpoint.status == EndpointStatus.online


def test_fault_and_disabled_are_kept_but_history_is_recorded(session: Session) -> None:
    faulty = _endpoint(session, EndpointStatus.fault)
    presence.mark_online(session, endpoint_id=faulty.id or 0, address="x", at=T0)
    presence.mark_offline(session, endpoint_id=faulty.id or 0, last_frame_at=T0, reason=Reason.stuck)
    session.commit()
    session.refresh(faulty)
    assert faulty.status == EndpointStatus.fault
    assert [e[:2] for e in _events(session, faulty)] == [("online", "connected"), ("offline", "stuck")]


def test_batched_last_seen_never_moves_back_and_firmware_is_kept(session: Session) -> None:
    first, second = _endpoint(session), _endpoint(session)
    presence.record_seen(
        session, seen={first.id or 0: T0, second.id or 0: T0}, firmware={first.id or 0: "1.2.0"}
    )
    presence.record_seen(session, seen={first.id or 0: T0 - timedelta(minutes=5)}, firmware={})
    presence.record_seen(session, seen={second.id or 0: T0 + timedelta(seconds=20)}, firmware={})
    session.commit()
    session.refresh(first)
    session.refresh(second)
    assert (first.last_seen_at, first.firmware) == (T0, "1.2.0")
    assert second.last_seen_at == T0 + timedelta(seconds=20)


def test_sweep_marks_stale_online_rows_offline_exactly_once(session: Session) -> None:
    stale, fresh, never = _endpoint(session), _endpoint(session), _endpoint(session, EndpointStatus.online)
    presence.mark_online(session, endpoint_id=stale.id or 0, address="s", at=T0)
    presence.mark_online(session, endpoint_id=fresh.id or 0, address="f", at=T0 + timedelta(minutes=5))
    cutoff = T0 + timedelta(minutes=1)
    assert presence.sweep_stale(session, cutoff=cutoff) == [stale.id]
    assert presence.sweep_stale(session, cutoff=cutoff) == []
    session.commit()
    assert _events(session, stale)[-1] == ("offline", "timeout", "s")
    session.refresh(never)
    assert never.status == EndpointStatus.online  # never seen: nothing to time out from


def test_presence_summary_by_town_and_village_and_scope(session: Session) -> None:
    city = builders.small_city(session)
    endpoints = city.endpoints
    endpoints[0].status = EndpointStatus.offline
    endpoints[4].status = EndpointStatus.fault
    endpoints[7].status = EndpointStatus.disabled
    for endpoint in (endpoints[0], endpoints[4], endpoints[7]):
        session.add(endpoint)
    session.commit()
    summary = presence.presence_summary(session, scope=None)
    counts = summary.city
    assert (counts.online, counts.offline, counts.fault, counts.disabled) == (9, 1, 1, 1)
    assert summary.city.total == 12
    assert [t.code for t in summary.towns] == sorted(t.code for t in city.towns)
    assert [(t.counts.online, t.counts.total) for t in summary.towns] == [(4, 6), (5, 6)]
    assert [v.counts.online for v in summary.villages] == [2, 2, 2, 3]
    scoped = presence.presence_summary(session, scope=frozenset({city.villages[0].id or 0}))
    assert (scoped.city.online, scoped.city.offline, len(scoped.towns), len(scoped.villages)) == (2, 1, 1, 1)


def test_batched_marks_keep_the_one_row_rules(session: Session) -> None:
    """Online: events only on a change, fault kept. Offline: not for a device seen since (it
    reconnected elsewhere), once per endpoint, fault kept."""
    plain, moved, faulty, elsewhere = (_endpoint(session) for _ in range(4))
    faulty.status = EndpointStatus.fault
    session.add(faulty)
    presence.mark_online(session, endpoint_id=moved.id or 0, address="a", at=T0)
    later = T0 + timedelta(seconds=70)
    arrivals = [
        presence.Arrival(plain.id or 0, "p", T0),
        presence.Arrival(plain.id or 0, "p", T0),
        presence.Arrival(moved.id or 0, "b", T0),
        presence.Arrival(faulty.id or 0, "f", T0),
        presence.Arrival(elsewhere.id or 0, "old", T0),
        presence.Arrival(elsewhere.id or 0, "new", later),  # reconnected to another gateway
    ]
    assert presence.mark_online_many(session, arrivals) == {
        plain.id,
        moved.id,
        faulty.id,
        elsewhere.id,
    }
    stale = T0 + timedelta(seconds=10)
    departures = [
        presence.Departure(plain.id or 0, stale, Reason.closed),
        presence.Departure(plain.id or 0, stale, Reason.closed),
        presence.Departure(faulty.id or 0, stale, Reason.shutdown),
        presence.Departure(elsewhere.id or 0, stale, Reason.shutdown),
    ]
    assert presence.mark_offline_many(session, departures) == {plain.id, faulty.id}
    session.commit()
    for endpoint in (plain, moved, faulty, elsewhere):
        session.refresh(endpoint)
    assert [e.status for e in (plain, moved, faulty, elsewhere)] == [
        EndpointStatus.offline,
        EndpointStatus.online,
        EndpointStatus.fault,
        EndpointStatus.online,
    ]
    assert elsewhere.last_seen_at == later
    assert _events(session, plain) == [
        ("online", "connected", "p"),
        ("offline", "closed", "p"),
    ]
    assert [e[2] for e in _events(session, moved)] == ["a", "b"]
    assert [e[:2] for e in _events(session, faulty)] == [("online", "connected"), ("offline", "shutdown")]
    assert _events(session, elsewhere) == [
        ("online", "connected", "old"),
        ("online", "connected", "new"),
    ]
