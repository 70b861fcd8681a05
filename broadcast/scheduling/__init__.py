"""Scheduling cores (pure): recurrence expansion, schedule presets, the rundown compiler, "why" and conflicts.

The campaign tables, API, materialization and scheduler process build on these modules.
"""

from broadcast.scheduling.classes import ClassPlan, class_id_for, classify, plan_classes
from broadcast.scheduling.compiler import (
    CITY_QUIET_HOURS,
    BroadcastWindow,
    CampaignSpec,
    CampaignSpecError,
    ClassId,
    ClassRundown,
    Drop,
    DropReason,
    QuietHours,
    Rundowns,
    Slot,
    SlotKey,
    compile_rundowns,
    local_days,
)
from broadcast.scheduling.explain import Collision, Explanation, conflict_report, explain_day
from broadcast.scheduling.presets import daily_at, describe, every_n_days, on_dates, parse_times, weekdays_at
from broadcast.scheduling.recurrence import (
    SHANGHAI,
    Excluded,
    Exclusion,
    Expansion,
    Recurrence,
    RecurrenceError,
    SchedulingError,
    Season,
    expand,
    expand_detailed,
)

__all__ = [
    "CITY_QUIET_HOURS",
    "SHANGHAI",
    "BroadcastWindow",
    "CampaignSpec",
    "CampaignSpecError",
    "ClassId",
    "ClassPlan",
    "ClassRundown",
    "Collision",
    "Drop",
    "DropReason",
    "Excluded",
    "Exclusion",
    "Expansion",
    "Explanation",
    "QuietHours",
    "Recurrence",
    "RecurrenceError",
    "Rundowns",
    "SchedulingError",
    "Season",
    "Slot",
    "SlotKey",
    "class_id_for",
    "classify",
    "compile_rundowns",
    "conflict_report",
    "daily_at",
    "describe",
    "every_n_days",
    "expand",
    "expand_detailed",
    "explain_day",
    "local_days",
    "on_dates",
    "parse_times",
    "plan_classes",
    "weekdays_at",
]
