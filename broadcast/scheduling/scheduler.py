"""The scheduler process (``broadcast scheduler``, or embedded in the demo): jobs behind a leader lease.

**One active scheduler.** APScheduler 3.x cannot share a job store between processes (its FAQ:
"You can't"), so every candidate runs its own ``BackgroundScheduler`` with an in-memory job store
and only the holder of the leader lease (:mod:`broadcast.scheduling.leader`; Redis when configured,
else the ``leases`` table) has work jobs. Jobs are derived data, rebuilt when leadership is won;
campaigns in the database are the source of truth. Every candidate runs a *heartbeat* every
``ttl / 3`` seconds: a stand-by tries to take the lease, the leader renews it. A leader whose
renewal fails (lease taken over, store unreachable) removes its work jobs at once; each work job
also re-checks the lease before it starts. A run already in progress finishes (APScheduler cannot
interrupt a thread): a materialization longer than the lease could overlap the next leader's,
which is safe because both write the same rows idempotently in one transaction each.

**Jobs.**

- ``materialize``: every minute. It consumes the refresh request (:mod:`broadcast.scheduling.refresh`)
  and materializes when there was one, or when the last full run is 15 minutes old, so the
  horizon rolls forward even when nothing changes. In the same process, a committed refresh
  request also wakes it within seconds. A failed run puts the request back for the next poll.
- ``seasons``: daily at 00:05 local time and once when leadership is won: approved campaigns whose
  season started become active, those whose season is over end (the campaigns service's
  ``activate_due`` / ``end_due``; they ask for a refresh when what plays changes).
- ``alerts``: every 30 s: active alerts past ``valid_until`` become expired (speakers stop on
  their own at that time; this keeps the desk and the reconnect list honest), and outbox rows
  published more than a day ago are deleted.
- ``playlog``: daily at 00:15 local time and once when leadership is won: partitions of the play
  log for this month and the next two, and months older than the retention period dropped
  (:mod:`broadcast.playlog.storage`).
- ``reconcile``: every 5 minutes: planned slots that ended more than ``play_log_grace_min`` ago
  get their outcome (played, partial, failed, missed offline or silent), and those of the last
  ``play_log_recheck_h`` hours are judged again for late uploads (:mod:`broadcast.playlog.reconcile`).
- ``heartbeat``: the lease, as above (on every candidate, leader or not).

**Coalescing and misfires, on purpose.** All jobs: ``coalesce=True`` (a backlog of missed runs,
e.g. after the host was suspended, becomes ONE run: every job computes from the current time, so
running it twice in a row only repeats work); ``max_instances=1`` (a slow materialization never
overlaps itself; the skipped tick is harmless because the request stays pending);
``misfire_grace_time=None`` (no limit: a late run is as correct as an on-time one, and skipping
it would be worse: a skipped heartbeat would hide a lost lease, a skipped ``seasons`` run would
leave today's campaigns unstarted until tomorrow, a skipped materialization would leave the
horizon stale for another poll).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI
from sqlalchemy import Engine

from broadcast.alerts.service import expire_alerts
from broadcast.clock import Clock, SystemClock
from broadcast.config import Settings
from broadcast.db import transaction
from broadcast.dispatch.outbox import purge_published
from broadcast.dispatch.push import notify_rundown_changed
from broadcast.playlog.reconcile import ReconcileReport, reconcile
from broadcast.playlog.storage import Maintenance, maintain
from broadcast.scheduling.leader import DEFAULT_TTL_S, LeaderLock, leader_lock
from broadcast.scheduling.materialize import MaterializeReport, materialize
from broadcast.scheduling.programs import request_slot_programs
from broadcast.scheduling.refresh import add_wakeup, remove_wakeup, request_refresh, take_refresh
from broadcast.scheduling.service import activate_due, end_due

log = logging.getLogger(__name__)

MATERIALIZE_POLL_S = 60
FULL_EVERY = timedelta(minutes=15)
WAKE_DELAY = timedelta(seconds=2)
SEASONS_AT = {"hour": 0, "minute": 5}
ALERTS_POLL_S = 30
OUTBOX_KEEP = timedelta(days=1)
PLAYLOG_AT = {"hour": 0, "minute": 15}
RECONCILE_POLL_S = 300
WORK_JOBS = ("materialize", "seasons", "alerts", "playlog", "reconcile")
JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class Scheduler:
    """The jobs of one scheduler candidate and its leadership (see the module doc)."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        lock: LeaderLock | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.lock = lock or leader_lock(engine, redis_url=settings.redis_url, ttl_s=DEFAULT_TTL_S)
        self.clock = clock or SystemClock()
        self.is_leader = False
        self.last_full: datetime | None = None
        self.last_report: MaterializeReport | None = None
        self._transition = threading.Lock()
        self._stopping = False
        self._aps = BackgroundScheduler(
            timezone=settings.tz,
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults=JOB_DEFAULTS,
        )

    # ---- lifecycle ----

    def start(self) -> None:
        """Start the heartbeat now; jobs follow once this candidate holds the lease."""
        self._aps.start()
        interval = max(1.0, self.lock.ttl_s / 3)
        self._aps.add_job(
            self.heartbeat, "interval", seconds=interval, id="heartbeat", next_run_time=self.clock.now()
        )
        add_wakeup(self.wake)

    def stop(self) -> None:
        """Stop the jobs (waiting for a run in progress) and give the lease up for a stand-by.

        ``shutdown(wait=True)`` holds APScheduler's job store lock while it waits for running jobs,
        so a job must not call the scheduler from then on: ``_stopping``, set under the same lock
        every job takes before touching the scheduler, guarantees it.
        """
        remove_wakeup(self.wake)
        with self._transition:
            self._stopping = True
        if self._aps.running:
            self._aps.shutdown(wait=True)
        if self.is_leader:
            self.is_leader = False
            self.lock.release()

    # ---- leadership ----

    def heartbeat(self) -> bool:
        """Take or renew the lease; add the work jobs on winning it, remove them on losing it."""
        held = self.lock.acquire()
        with self._transition:
            if self._stopping:
                return held
            if held and not self.is_leader:
                self.is_leader = True
                log.info("scheduler %s is now the leader (lease %s)", self.lock.holder, self.lock.name)
                self._add_work_jobs()
            elif not held and self.is_leader:
                self._step_down()
        return held

    def _step_down(self) -> None:
        self.is_leader = False
        log.warning("scheduler %s lost the lease %s; stopping its jobs", self.lock.holder, self.lock.name)
        for job_id in WORK_JOBS:
            with contextlib.suppress(JobLookupError):
                self._aps.remove_job(job_id)

    def _add_work_jobs(self) -> None:
        now = self.clock.now()
        self.last_full = None
        if not self._aps.running:
            return
        self._aps.add_job(
            self.materialize_job,
            "interval",
            seconds=MATERIALIZE_POLL_S,
            id="materialize",
            next_run_time=now,
            replace_existing=True,
        )
        self._aps.add_job(
            self.seasons_job,
            "cron",
            id="seasons",
            timezone=self.settings.tz,
            next_run_time=now,
            replace_existing=True,
            **SEASONS_AT,
        )
        self._aps.add_job(
            self.alerts_job,
            "interval",
            seconds=ALERTS_POLL_S,
            id="alerts",
            next_run_time=now,
            replace_existing=True,
        )
        self._aps.add_job(
            self.playlog_job,
            "cron",
            id="playlog",
            timezone=self.settings.tz,
            next_run_time=now,
            replace_existing=True,
            **PLAYLOG_AT,
        )
        self._aps.add_job(
            self.reconcile_job,
            "interval",
            seconds=RECONCILE_POLL_S,
            id="reconcile",
            next_run_time=now,
            replace_existing=True,
        )

    def _still_leader(self) -> bool:
        return self.is_leader and self.heartbeat()

    def wake(self) -> None:
        """A refresh was committed in this process: materialize in a moment instead of at the next poll."""
        with self._transition:
            if self._stopping or not self.is_leader or not self._aps.running:
                return
            with contextlib.suppress(JobLookupError):
                self._aps.modify_job("materialize", next_run_time=self.clock.now() + WAKE_DELAY)

    # ---- jobs ----

    def materialize_job(self) -> MaterializeReport | None:
        """Materialize if a refresh was requested or the last full run is ``FULL_EVERY`` old."""
        if not self._still_leader():
            return None
        now = self.clock.now()
        with transaction(self.engine) as session:
            requested = take_refresh(session)
        if not requested and self.last_full is not None and now - self.last_full < FULL_EVERY:
            return None
        try:
            with transaction(self.engine) as session:
                report = materialize(session, settings=self.settings, now=now)
                request_slot_programs(
                    session,
                    window_start=report.window_start,
                    window_end=report.window_end,
                    tz=self.settings.tz,
                )
                # Sent after the commit: speakers whose slots changed re-fetch their rundown.
                notify_rundown_changed(session, endpoint_ids=report.changed_endpoints, settings=self.settings)
        except Exception:
            log.exception("materialization failed; retrying at the next poll")
            with transaction(self.engine) as session:
                request_refresh(session, reason="retry after a failed materialization", wake=False)
            return None
        self.last_full, self.last_report = now, report
        return report

    def seasons_job(self) -> tuple[int, int] | None:
        """Start and end campaigns by season for the local date; returns (activated, ended)."""
        if not self._still_leader():
            return None
        today = self.clock.now().astimezone(self.settings.tz).date()
        with transaction(self.engine) as session:
            activated = activate_due(session, today=today)
            ended = end_due(session, today=today)
        if activated or ended:
            log.info("seasons %s: %d campaigns started, %d ended", today, len(activated), len(ended))
        return len(activated), len(ended)

    def alerts_job(self) -> tuple[int, int] | None:
        """Expire alerts past their validity and forget long-published outbox rows: (expired, purged)."""
        if not self._still_leader():
            return None
        now = self.clock.now()
        with transaction(self.engine) as session:
            expired = expire_alerts(session, now=now)
            purged = purge_published(session, before=now - OUTBOX_KEEP)
        if expired:
            log.info("%d alerts expired: %s", len(expired), expired)
        return len(expired), purged

    def playlog_job(self) -> Maintenance | None:
        """Play log partitions ahead and retention behind."""
        if not self._still_leader():
            return None
        with transaction(self.engine) as session:
            report = maintain(session, now=self.clock.now(), months=self.settings.play_log_retention_months)
        if report.created or report.dropped or report.deleted:
            log.info(
                "play log: partitions %s created (%d rows moved from default), %s dropped, %d rows deleted",
                report.created,
                report.moved,
                report.dropped,
                report.deleted,
            )
        return report

    def reconcile_job(self) -> ReconcileReport | None:
        """Judge the slots that are over (see :mod:`broadcast.playlog.reconcile`)."""
        if not self._still_leader():
            return None
        with transaction(self.engine) as session:
            report = reconcile(
                session,
                now=self.clock.now(),
                grace=timedelta(minutes=self.settings.play_log_grace_min),
                recheck=timedelta(hours=self.settings.play_log_recheck_h),
            )
        if report.judged or report.forgotten:
            log.info("judged %d slots; %d outcomes of dropped slots gone", report.judged, report.forgotten)
        return report


def start_embedded_scheduler(app: FastAPI) -> Scheduler:
    """Run a scheduler candidate inside the server (the demo); it leads only if no other holds the lease."""
    running: Scheduler | None = getattr(app.state, "scheduler", None)
    if running is not None:
        return running
    scheduler = Scheduler(engine=app.state.engine, settings=app.state.settings)
    scheduler.start()
    app.state.scheduler = scheduler
    return scheduler


def stop_embedded_scheduler(app: FastAPI) -> None:
    scheduler: Scheduler | None = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.stop()
        app.state.scheduler = None
