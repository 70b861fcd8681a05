"""Endpoint classes: endpoints that share the same campaigns and the same quiet hours.

The compiler works per class, never per endpoint per campaign; the caller resolves each
campaign's target to endpoint ids, groups them here, then copies each class's slots to its members.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broadcast.scheduling.compiler import CampaignSpecError, ClassId, QuietHours


@dataclass(frozen=True, slots=True)
class ClassPlan:
    """Endpoints grouped into classes: members, quiet hours, and the classes each campaign targets."""

    members: Mapping[ClassId, tuple[int, ...]]
    quiet: Mapping[ClassId, QuietHours]
    targets: Mapping[int, frozenset[ClassId]]


def class_id_for(campaign_ids: Iterable[int], quiet: QuietHours) -> ClassId:
    """A short stable id for the class of endpoints with these campaigns and quiet hours."""
    canonical = f"{quiet}|{','.join(str(cid) for cid in sorted(set(campaign_ids)))}"
    return "cls-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def plan_classes(
    endpoint_campaigns: Mapping[int, frozenset[int]], endpoint_quiet: Mapping[int, QuietHours]
) -> ClassPlan:
    """Group endpoints by (campaigns, quiet hours); everything sorted for stable output."""
    missing = sorted(set(endpoint_campaigns) - set(endpoint_quiet))
    if missing:
        raise CampaignSpecError(f"终端 {missing[:5]} 没有静默时段设置，无法编排。")
    members: dict[ClassId, list[int]] = defaultdict(list)
    quiet: dict[ClassId, QuietHours] = {}
    targets: dict[int, set[ClassId]] = defaultdict(set)
    for endpoint_id in sorted(endpoint_campaigns):
        campaigns = endpoint_campaigns[endpoint_id]
        class_id = class_id_for(campaigns, endpoint_quiet[endpoint_id])
        members[class_id].append(endpoint_id)
        quiet[class_id] = endpoint_quiet[endpoint_id]
        for campaign_id in campaigns:
            targets[campaign_id].add(class_id)
    return ClassPlan(
        members={cid: tuple(members[cid]) for cid in sorted(members)},
        quiet={cid: quiet[cid] for cid in sorted(quiet)},
        targets={cid: frozenset(targets[cid]) for cid in sorted(targets)},
    )


def classify(
    endpoint_campaigns: Mapping[int, frozenset[int]], endpoint_quiet: Mapping[int, QuietHours]
) -> dict[ClassId, list[int]]:
    """Endpoint ids per class (endpoints sharing the same campaigns and the same quiet hours)."""
    plan = plan_classes(endpoint_campaigns, endpoint_quiet)
    return {class_id: list(ids) for class_id, ids in plan.members.items()}
