"""The demo city as pure data: one seeded ``random.Random`` in, the same towns, villages and
endpoints out on every run and every machine (no sets, no hashing, no clock).

29 towns and sub-districts, 278 villages and communities, 9,305 endpoints, each village 15 to 60.
Codes follow the statistical division format: town = county (6) + 3 digits (街道 0xx, 镇 1xx,
乡 2xx); village = town + 3 digits (社区 0xx, 行政村 2xx).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from itertools import accumulate

from broadcast.demo import names
from broadcast.demo.names import Terrain
from broadcast.regions.models import EndpointStatus, TownKind, VillageKind

TOWN_COUNT = 29
VILLAGE_COUNT = 278
COMMUNITY_COUNT = 42
ENDPOINT_COUNT = 9305
ENDPOINTS_PER_VILLAGE = (15, 60)
BOX = ((28.0, 28.6), (113.3, 113.9))  # (latitude, longitude) bounds of the county
OFFLINE_RATE = 0.015
FAULT_RATE = 0.002

# Probability that a village in a town of this terrain has the feature behind a tag.
FEATURE_ODDS: dict[Terrain, dict[str, float]] = {
    "urban": {"high_rise": 0.85, "market": 0.5, "construction": 0.35, "river": 0.25, "school": 0.6,
              "highway": 0.3, "industrial_park": 0.1},
    "plain": {"river": 0.5, "reservoir": 0.1, "forest": 0.1, "school": 0.7, "highway": 0.25,
              "industrial_park": 0.12, "construction": 0.08, "market": 0.1},
    "hill": {"forest": 0.55, "river": 0.35, "reservoir": 0.25, "school": 0.65, "highway": 0.2,
             "industrial_park": 0.05, "market": 0.08},
    "mountain": {"forest": 0.95, "reservoir": 0.3, "river": 0.3, "school": 0.55, "highway": 0.1},
}  # fmt: skip
# How many endpoints of such a village carry the tag: a share for area features, a count for points.
AREA_SHARE = {"forest": (0.4, 0.8), "river": (0.15, 0.4), "high_rise": (0.3, 0.6)}
POINT_COUNT = {"reservoir": (2, 6), "school": (1, 2), "market": (1, 3), "industrial_park": (2, 5),
               "highway": (1, 4), "construction": (1, 3)}  # fmt: skip
POINT_NAMES = {
    "reservoir": ("水库坝首", "水库库尾", "水库溢洪道", "水库管理站", "水库上游", "水库下游"),
    "school": ("小学", "幼儿园"),
    "market": ("集市", "农贸市场", "商业街"),
}


@dataclass(frozen=True)
class TownPlan:
    code: str
    name: str
    kind: TownKind
    terrain: Terrain
    latitude: float
    longitude: float


@dataclass(frozen=True)
class VillagePlan:
    code: str
    name: str
    kind: VillageKind
    town_code: str
    terrain: Terrain
    latitude: float
    longitude: float
    features: tuple[str, ...]


@dataclass(frozen=True)
class EndpointPlan:
    code: str
    name: str
    village_code: str
    latitude: float
    longitude: float
    status: EndpointStatus
    tags: tuple[str, ...]
    silent_h: float  # hours since last heard from, for endpoints that are not online


@dataclass(frozen=True)
class CityPlan:
    towns: tuple[TownPlan, ...]
    villages: tuple[VillagePlan, ...]
    endpoints: tuple[EndpointPlan, ...]

    def digest(self) -> str:
        lines = [town_line(t.code, t.name, t.kind) for t in self.towns]
        lines += [village_line(v.code, v.name, v.kind, v.town_code) for v in self.villages]
        lines += [
            endpoint_line(e.code, e.name, e.village_code, e.latitude, e.longitude, e.status, e.tags)
            for e in self.endpoints
        ]
        return digest_of(lines)


def town_line(code: str, name: str, kind: str) -> str:
    return f"T|{code}|{name}|{kind}"


def village_line(code: str, name: str, kind: str, town_code: str) -> str:
    return f"V|{code}|{name}|{kind}|{town_code}"


def endpoint_line(
    code: str, name: str, village: str, lat: float, lon: float, status: str, tags: tuple[str, ...]
) -> str:
    return f"E|{code}|{name}|{village}|{lat:.6f}|{lon:.6f}|{status}|{','.join(sorted(tags))}"


def digest_of(lines: list[str]) -> str:
    """sha256 of the sorted lines: the same city gives the same digest however it was read."""
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def split(rng: random.Random, total: int, parts: int, low: int, high: int, weights: list[float]) -> list[int]:
    """``parts`` integers in [low, high] summing to ``total``, drawn in proportion to ``weights``."""
    if not parts * low <= total <= parts * high:
        raise ValueError(f"cannot split {total} into {parts} parts of {low}..{high}")
    counts = [low] * parts
    cumulative = list(accumulate(weights))
    remaining = total - parts * low
    while remaining:
        i = rng.choices(range(parts), cum_weights=cumulative)[0]
        if counts[i] < high:
            counts[i] += 1
            remaining -= 1
    return counts


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return round(min(max(value, bounds[0]), bounds[1]), 6)


def _town_specs() -> list[tuple[str, Terrain, TownKind, str]]:
    groups = (
        (names.SUBDISTRICTS, TownKind.subdistrict, 1),
        (names.TOWNS, TownKind.town, 101),
        (names.TOWNSHIPS, TownKind.town, 201),
    )
    return [
        (name, terrain, kind, f"{names.COUNTY_CODE}{first + i:03d}")
        for entries, kind, first in groups
        for i, (name, terrain) in enumerate(entries)
    ]


def _grid_cells(rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Cell centres on a 4 x 6 grid, easternmost (the mountains) first, with a little jitter."""
    (lat0, lat1), (lon0, lon1) = BOX
    rows, cols = 4, count // 4
    cells = [
        (lat0 + (r + 0.5) * (lat1 - lat0) / rows, lon0 + (c + 0.5) * (lon1 - lon0) / cols)
        for c in reversed(range(cols))
        for r in range(rows)
    ]
    return [(lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.015, 0.015)) for lat, lon in cells]


def plan_towns(rng: random.Random) -> list[TownPlan]:
    specs = _town_specs()
    rural = sorted(
        (s for s in specs if s[2] == TownKind.town),
        key=lambda s: ("mountain", "hill", "plain").index(s[1]),
    )
    centres = dict(zip((s[3] for s in rural), _grid_cells(rng, len(rural)), strict=True))
    for spec in specs:
        if spec[2] == TownKind.subdistrict:
            centres[spec[3]] = (28.15 + rng.uniform(-0.03, 0.03), 113.62 + rng.uniform(-0.03, 0.03))
    return [
        TownPlan(
            code, name, kind, terrain, _clamp(centres[code][0], BOX[0]), _clamp(centres[code][1], BOX[1])
        )
        for name, terrain, kind, code in specs
    ]


def _village_name(rng: random.Random, town: TownPlan, used: dict[str, None]) -> str:
    while True:
        if town.kind == TownKind.subdistrict:
            name = f"{rng.choice(names.COMMUNITY_NAMES)}社区"
        else:
            second = names.MOUNTAIN_SECOND if town.terrain == "mountain" else names.VILLAGE_SECOND
            name = f"{rng.choice(names.VILLAGE_FIRST)}{rng.choice(second)}村"
        if name not in used and name[0] != name[1]:
            used[name] = None
            return name


def _features(rng: random.Random, terrain: Terrain, seat: bool) -> tuple[str, ...]:
    drawn = [tag for tag, odds in FEATURE_ODDS[terrain].items() if rng.random() < odds]
    if seat and "market" not in drawn:
        drawn.append("market")
    return tuple(drawn)


def _villages_of(rng: random.Random, town: TownPlan, count: int, used: dict[str, None]) -> list[VillagePlan]:
    community = town.kind == TownKind.subdistrict
    kind, first, spread = (VillageKind.community, 1, 0.015) if community else (VillageKind.village, 201, 0.04)
    return [
        VillagePlan(
            code=f"{town.code}{first + i:03d}",
            name=_village_name(rng, town, used),
            kind=kind,
            town_code=town.code,
            terrain=town.terrain,
            latitude=_clamp(town.latitude + rng.uniform(-spread, spread), BOX[0]),
            longitude=_clamp(town.longitude + rng.uniform(-spread, spread), BOX[1]),
            features=_features(rng, town.terrain, seat=i == 0 and not community),
        )
        for i in range(count)
    ]


def plan_villages(rng: random.Random, towns: list[TownPlan]) -> list[VillagePlan]:
    urban = [t for t in towns if t.kind == TownKind.subdistrict]
    rural = [t for t in towns if t.kind == TownKind.town]
    counts = split(rng, COMMUNITY_COUNT, len(urban), 6, 11, [rng.uniform(0.5, 1.5) for _ in urban])
    counts += split(
        rng, VILLAGE_COUNT - COMMUNITY_COUNT, len(rural), 5, 16, [rng.uniform(0.3, 1.7) for _ in rural]
    )
    used: dict[str, None] = {}
    return [
        v for town, n in zip(urban + rural, counts, strict=True) for v in _villages_of(rng, town, n, used)
    ]


def _tag_sets(rng: random.Random, village: VillagePlan, count: int) -> list[list[str]]:
    tags: list[list[str]] = [[] for _ in range(count)]
    for feature in village.features:
        if feature in AREA_SHARE:
            low, high = AREA_SHARE[feature]
            k = max(1, round(count * rng.uniform(low, high)))
        else:
            k = rng.randint(*POINT_COUNT[feature])
        for i in sorted(rng.sample(range(count), k)):
            tags[i].append(feature)
    return tags


def _point_name(village: VillagePlan, point: str, j: int, reservoir: str) -> str:
    if point == "reservoir":
        return f"{reservoir}{POINT_NAMES['reservoir'][j % 6]}"
    if point in POINT_NAMES:
        return f"{village.name}{POINT_NAMES[point][j % len(POINT_NAMES[point])]}"
    label = {"industrial_park": "工业园", "highway": "公路口", "construction": "建筑工地"}[point]
    return f"{village.name}{label}{j + 1}号点"


def _endpoint_name(
    village: VillagePlan, i: int, tags: list[str], seen: dict[str, int], reservoir: str
) -> str:
    point = next((t for t in POINT_COUNT if t in tags), None)
    if point is not None:
        seen[point] = seen.get(point, -1) + 1
        return _point_name(village, point, seen[point], reservoir)
    if village.kind == VillageKind.community:
        return (
            f"{village.name}{'社区服务中心' if i == 0 else f'{i}栋' if 'high_rise' in tags else f'{i}号点'}"
        )
    return f"{village.name}{'村部' if i == 0 else f'第{i}村民小组'}"


def _status(rng: random.Random) -> tuple[EndpointStatus, float]:
    draw, hours = rng.random(), round(rng.uniform(1, 120), 2)
    if draw < OFFLINE_RATE:
        return EndpointStatus.offline, hours
    if draw < OFFLINE_RATE + FAULT_RATE:
        return EndpointStatus.fault, hours
    return EndpointStatus.online, 0.0


def _endpoints_of(rng: random.Random, village: VillagePlan, count: int) -> list[EndpointPlan]:
    reservoir = rng.choice(names.RESERVOIR_NAMES)
    seen: dict[str, int] = {}
    endpoints = []
    for i, tags in enumerate(_tag_sets(rng, village, count)):
        status, silent_h = _status(rng)
        endpoints.append(
            EndpointPlan(
                code=f"{village.code}-{i + 1:03d}",
                name=_endpoint_name(village, i, tags, seen, reservoir),
                village_code=village.code,
                latitude=_clamp(rng.gauss(village.latitude, 0.004), BOX[0]),
                longitude=_clamp(rng.gauss(village.longitude, 0.004), BOX[1]),
                status=status,
                tags=tuple(tags),
                silent_h=silent_h,
            )
        )
    return endpoints


def plan_endpoints(rng: random.Random, villages: list[VillagePlan]) -> list[EndpointPlan]:
    weights = [
        rng.lognormvariate(0, 0.45) * (1.3 if v.kind == VillageKind.community else 1.0) for v in villages
    ]
    low, high = ENDPOINTS_PER_VILLAGE
    counts = split(rng, ENDPOINT_COUNT, len(villages), low, high, weights)
    return [e for village, n in zip(villages, counts, strict=True) for e in _endpoints_of(rng, village, n)]


def plan_city(seed: int = 2026) -> CityPlan:
    rng = random.Random(seed)
    towns = plan_towns(rng)
    villages = plan_villages(rng, towns)
    endpoints = plan_endpoints(rng, villages)
    return CityPlan(tuple(towns), tuple(villages), tuple(endpoints))
