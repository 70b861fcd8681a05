"""Endpoint CSV import and export.

Columns (header required, any order): ``code,name,village_code,tags,latitude,longitude,volume,status``.
Tags are separated by ``;`` or ``|``; an empty latitude, longitude or tags cell means "none";
an empty volume or status cell keeps the stored value (80 and offline for a new endpoint).
Files are UTF-8 with or without a BOM; exports carry a BOM so Excel shows the Chinese right.

Policy, "nothing half-written": every row is checked before anything is written. If any row is
bad the whole import is refused (422) with every row's errors, unless ``partial`` is asked for:
then the good rows are imported and the bad ones reported. Re-importing updates endpoints by
code and never duplicates them. The database work is bulk (a few statements per 1,000 rows).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.clock import utc_now
from broadcast.db import metadata
from broadcast.errors import Invalid, TooLarge, UnsupportedMedia
from broadcast.regions.models import TAG_LABELS, TAGS, Endpoint, EndpointStatus, EndpointTag, Village
from broadcast.regions.schemas import EndpointFilters, ImportResult, RowError
from broadcast.regions.service import Scope, chunked, endpoint_outs, endpoint_query, tags_of

COLUMNS = ("code", "name", "village_code", "tags", "latitude", "longitude", "volume", "status")
MAX_IMPORT_BYTES = 20 * 1024 * 1024
DEFAULT_VOLUME = 80
_TAG_BY_LABEL = {label: tag for tag, label in TAG_LABELS.items()} | {tag: tag for tag in TAGS}
Progress = Callable[[int, int], None]
# Core inserts of plain rows: the ORM's per-object bookkeeping would double the import time.
_ENDPOINTS = metadata.tables["endpoints"]
_ENDPOINT_TAGS = metadata.tables["endpoint_tags"]


@dataclass(frozen=True)
class EndpointRow:
    line: int
    code: str
    name: str
    village_code: str
    tags: tuple[str, ...]
    latitude: float | None
    longitude: float | None
    volume: int | None  # None keeps the stored value
    status: EndpointStatus | None  # None keeps the stored value


# Parsing (pure) -------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    if len(data) > MAX_IMPORT_BYTES:
        raise TooLarge(f"文件超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB，请拆分后分批导入")
    if data.startswith(b"PK\x03\x04"):
        raise UnsupportedMedia(
            "这是 Excel 工作簿，不是 CSV：请在 Excel 中“另存为 → CSV UTF-8（逗号分隔）”后再导入"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Invalid(
            f"文件不是 UTF-8 编码（第 {line} 行出现无法识别的字节）：请另存为“CSV UTF-8”后再导入",
            details={"line": line},
        ) from exc


def _header(cells: list[str]) -> list[str]:
    names = [c.strip().lower() for c in cells]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [c for c in names if c not in COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"缺少列：{'、'.join(missing)}")
    if unknown:
        problems.append(f"无法识别的列：{'、'.join(unknown)}")
    if repeated:
        problems.append(f"重复的列：{'、'.join(repeated)}")
    if problems:
        raise Invalid(
            f"表头有误（{'；'.join(problems)}）。表头必须是：{','.join(COLUMNS)}",
            details={"missing": missing, "unknown": unknown, "repeated": repeated, "expected": list(COLUMNS)},
        )
    return names


def _text(value: str, *, limit: int, pattern: str | None = None) -> str:
    if not value:
        raise ValueError("不能为空")
    if len(value) > limit:
        raise ValueError(f"不能超过 {limit} 个字符")
    if pattern and not all(ch.isascii() and (ch.isalnum() or ch in pattern) for ch in value):
        raise ValueError(f"只能包含字母、数字和 {pattern}，实际为 {value}")
    return value


def _coordinate(value: str, *, bound: int, label: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{label}不是数字：{value}") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise ValueError(f"{label}必须在 -{bound} 到 {bound} 之间，实际为 {value}")
    return number


def _volume(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 0 <= int(value) <= 100:
        raise ValueError(f"音量必须是 0 到 100 的整数，实际为 {value}")
    return int(value)


def _status(value: str) -> EndpointStatus | None:
    if not value:
        return None
    if value not in EndpointStatus.__members__:
        raise ValueError(f"未知状态 {value}；可用值：{'、'.join(EndpointStatus.__members__)}")
    return EndpointStatus(value)


def _tags(value: str) -> tuple[str, ...]:
    names = [part.strip() for part in value.replace("|", ";").replace("；", ";").split(";")]
    unknown = [n for n in names if n and n not in _TAG_BY_LABEL]
    if unknown:
        raise ValueError(f"未知标签 {'、'.join(unknown)}；可用标签：{'、'.join(TAGS)}")
    return tuple(sorted({_TAG_BY_LABEL[n] for n in names if n}))


_PARSERS: dict[str, Callable[[str], Any]] = {
    "code": lambda v: _text(v, limit=32, pattern="_-."),
    "name": lambda v: _text(v, limit=128),
    "village_code": lambda v: _text(v, limit=12),
    "tags": _tags,
    "latitude": lambda v: _coordinate(v, bound=90, label="纬度"),
    "longitude": lambda v: _coordinate(v, bound=180, label="经度"),
    "volume": _volume,
    "status": _status,
}


def row_error(line: int, column: str | None, message: str) -> RowError:
    where = f"第 {line} 行 {column}" if column else f"第 {line} 行"
    return RowError(line=line, column=column, message=f"{where}：{message}")


def _row(line: int, header: list[str], cells: list[str]) -> tuple[EndpointRow | None, list[RowError]]:
    if len(cells) != len(header):
        return None, [row_error(line, None, f"本行有 {len(cells)} 列，表头有 {len(header)} 列")]
    values: dict[str, Any] = {}
    errors = []
    for column, cell in zip(header, cells, strict=True):
        try:
            values[column] = _PARSERS[column](cell.strip())
        except ValueError as exc:
            errors.append(row_error(line, column, str(exc)))
    return (None, errors) if errors else (EndpointRow(line=line, **values), [])


def parse(text: str) -> tuple[list[EndpointRow], list[RowError]]:
    """Rows that passed every check on their own, and the errors of the others; line 1 is the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    first = next(reader, None)
    if first is None:
        raise Invalid(f"文件为空：第一行必须是表头 {','.join(COLUMNS)}")
    header = _header(first)
    rows: list[EndpointRow] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row, problems = _row(line, header, cells)
        errors += problems
        if row is None:
            continue
        if row.code in first_line:
            errors.append(row_error(line, "code", f"终端代码 {row.code} 与第 {first_line[row.code]} 行重复"))
            continue
        first_line[row.code] = line
        rows.append(row)
    return rows, errors


# Import ---------------------------------------------------------------------------------------


def _village_ids(session: Session, rows: Sequence[EndpointRow]) -> dict[str, int]:
    codes = sorted({r.village_code for r in rows})
    found: dict[str, int] = {}
    for part in chunked(codes):
        query = select(Village.code, Village.id).where(col(Village.code).in_(part))
        found.update({code: vid for code, vid in session.exec(query).all() if vid is not None})
    return found


def _existing(session: Session, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    fields = ("id", "code", "name", "village_id", "latitude", "longitude", "volume", "status")
    found: dict[str, dict[str, Any]] = {}
    for part in chunked(codes):
        query = select(*(getattr(Endpoint, f) for f in fields)).where(col(Endpoint.code).in_(part))
        found.update({row[1]: dict(zip(fields, row, strict=True)) for row in session.exec(query).all()})
    tags = tags_of(session, [e["id"] for e in found.values()])
    for entry in found.values():
        entry["tags"] = tuple(tags[entry["id"]])
    return found


def _wanted(row: EndpointRow, village_id: int, old: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "village_id": village_id,
        "latitude": row.latitude,
        "longitude": row.longitude,
        "volume": row.volume if row.volume is not None else old["volume"] if old else DEFAULT_VOLUME,
        "status": row.status or (old["status"] if old else EndpointStatus.offline),
        "tags": row.tags,
    }


@dataclass
class _Plan:
    creates: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    unchanged: int


def _plan(
    rows: Sequence[EndpointRow], villages: dict[str, int], existing: dict[str, dict[str, Any]]
) -> _Plan:
    plan = _Plan(creates=[], updates=[], unchanged=0)
    for row in rows:
        old = existing.get(row.code)
        wanted = _wanted(row, villages[row.village_code], old)
        if old is None:
            plan.creates.append(wanted)
        elif any(old[k] != v for k, v in wanted.items()):
            plan.updates.append({**wanted, "id": old["id"], "tags_changed": old["tags"] != row.tags})
        else:
            plan.unchanged += 1
    return plan


def _write(session: Session, plan: _Plan, progress: Progress | None) -> None:
    now = utc_now()
    total, done = len(plan.creates) + len(plan.updates), 0
    for part in chunked(plan.creates):
        rows = [
            {k: v for k, v in c.items() if k != "tags"} | {"created_at": now, "updated_at": now} for c in part
        ]
        session.exec(insert(_ENDPOINTS), params=rows)
        codes = [c["code"] for c in part]
        query = select(Endpoint.code, Endpoint.id).where(col(Endpoint.code).in_(codes))
        ids = {code: endpoint_id or 0 for code, endpoint_id in session.exec(query).all()}
        _insert_tags(session, [(ids[c["code"]], c["tags"]) for c in part])
        done += len(part)
        if progress:
            progress(done, total)
    for part in chunked(plan.updates):
        fields = ("id", "name", "village_id", "latitude", "longitude", "volume", "status")
        session.exec(update(Endpoint), params=[{f: u[f] for f in fields} | {"updated_at": now} for u in part])
        _retag(session, [u for u in part if u["tags_changed"]])
        done += len(part)
        if progress:
            progress(done, total)


def _retag(session: Session, updates: list[dict[str, Any]]) -> None:
    if updates:
        ids = [u["id"] for u in updates]
        session.exec(delete(EndpointTag).where(col(EndpointTag.endpoint_id).in_(ids)))
        _insert_tags(session, [(u["id"], u["tags"]) for u in updates])


def _insert_tags(session: Session, pairs: list[tuple[int, tuple[str, ...]]]) -> None:
    rows = [{"endpoint_id": endpoint_id, "tag": tag} for endpoint_id, tags in pairs for tag in tags]
    if rows:
        session.exec(insert(_ENDPOINT_TAGS), params=rows)


def _check_villages(
    rows: list[EndpointRow], villages: dict[str, int]
) -> tuple[list[EndpointRow], list[RowError]]:
    errors = [
        row_error(r.line, "village_code", f"村（社区）代码 {r.village_code} 不存在，请先创建该村（社区）")
        for r in rows
        if r.village_code not in villages
    ]
    return [r for r in rows if r.village_code in villages], errors


def import_endpoints(
    session: Session, *, data: bytes, partial: bool, actor: Actor, progress: Progress | None = None
) -> ImportResult:
    """Create or update endpoints from a CSV file (see the module docstring for the policy)."""
    parsed, errors = parse(decode(data))
    villages = _village_ids(session, parsed)
    rows, village_errors = _check_villages(parsed, villages)
    errors = sorted(errors + village_errors, key=lambda e: e.line)
    if errors and not partial:
        raise Invalid(
            f"导入失败：{len({e.line for e in errors})} 行有错误，未写入任何数据。请修正后重新导入，"
            "或使用部分导入（partial）只导入正确的行",
            details={"errors": [e.model_dump() for e in errors]},
        )
    plan = _plan(rows, villages, _existing(session, [r.code for r in rows]))
    _write(session, plan, progress)
    result = ImportResult(
        created=len(plan.creates), updated=len(plan.updates), unchanged=plan.unchanged, errors=errors
    )
    audit.record(
        session,
        actor=actor,
        action="endpoint.import",
        entity_type="endpoint",
        after={
            **result.model_dump(exclude={"errors"}),
            "rejected_rows": len({e.line for e in errors}),
            "partial": partial,
            "created_codes": [c["code"] for c in plan.creates],
            "updated_codes": [u["code"] for u in plan.updates],
        },
    )
    return result


# Export ---------------------------------------------------------------------------------------


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def write_csv(session: Session, *, filters: EndpointFilters, scope: Scope, out: TextIO) -> int:
    """Write the filtered endpoints as CSV (with a BOM) in the import format; returns how many.

    A round trip (export, then import the file) reports every row unchanged.
    """
    endpoints = session.exec(endpoint_query(session, filters=filters, scope=scope)).all()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for e in endpoint_outs(session, endpoints):
        tags = ";".join(e.tags)
        lat, lon = _cell(e.latitude), _cell(e.longitude)
        writer.writerow([e.code, e.name, e.village_code, tags, lat, lon, e.volume, e.status.value])
    return len(endpoints)
