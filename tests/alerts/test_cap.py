"""CAP 1.2 in and out: real agency-style samples, every refusal class, hostile XML, round trips."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from broadcast.alerts.cap import (
    MAX_CAP_BYTES,
    CapArea,
    CapError,
    CapExport,
    CapInfo,
    CapReference,
    admin_codes,
    category_for,
    is_drill,
    level_for_severity,
    parse_cap,
    point_in_polygon,
    render_cap,
    severity_for_level,
    validate_cap,
)

SAMPLES = Path(__file__).parent / "cap_samples"
SENDER = "swj.shifan@hydrology.example.cn"
RIVER = [
    (28.3200, 113.9000),
    (28.3260, 113.9200),
    (28.3220, 113.9400),
    (28.3300, 113.9600),
    (28.3220, 113.9620),
    (28.3140, 113.9400),
    (28.3180, 113.9200),
    (28.3120, 113.9000),
    (28.3200, 113.9000),
]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def flood_alert_text() -> str:
    return sample("flood_alert.xml").decode()


def reason_of(data: bytes) -> str:
    with pytest.raises(CapError) as caught:
        parse_cap(data)
    return caught.value.reason


def without(text: str, element: str) -> bytes:
    """The flood alert with the first <element>…</element> removed."""
    stripped, count = re.subn(rf"\s*<{element}>[^<]*</{element}>", "", text, count=1)
    assert count == 1
    return stripped.encode()


def export(**changes: object) -> CapExport:
    fields: dict[str, object] = {
        "identifier": "SFYJ-2024-0702-001",
        "sender": "yjj.shifan@example.cn",
        "sent": datetime(2024, 7, 1, 18, 20, 5, 123456, tzinfo=UTC),
        "status": "Actual",
        "msg_type": "Alert",
        "category": "flood",
        "event": "山洪灾害预警",
        "level": 2,
        "headline": "大溪河山洪橙色预警",
        "description": "大溪河上游强降雨，沿河可能发生山洪，请立即向高处转移。",
        "area_description": "大溪河龙泉镇至大溪乡沿河两岸",
        "instruction": "远离河道，不要涉水过河。",
        "expires": datetime(2024, 7, 2, 6, 0, tzinfo=UTC),
        "sender_name": "示范市应急管理局",
        "web": "https://yjj.example.cn/alerts/1",
        "geocodes": [("行政区划代码", "430181102"), ("行政区划代码", "430181201203")],
        "polygons": [RIVER],
    }
    fields.update(changes)
    return CapExport(**fields)  # type: ignore[arg-type]


def info_with(event: str, categories: list[str]) -> CapInfo:
    return CapInfo(
        language="zh-CN",
        categories=categories,
        event=event,
        urgency="Immediate",
        severity="Severe",
        certainty="Likely",
        headline=None,
        description=None,
        instruction=None,
        effective=None,
        onset=None,
        expires=None,
        sender_name=None,
        web=None,
        event_codes=[],
        parameters=[],
        areas=[],
    )


# --- the samples --------------------------------------------------------------------------


def test_flood_alert_is_read_with_times_in_utc() -> None:
    message = parse_cap(sample("flood_alert.xml"))

    assert message.identifier == "SFSWJ-2024-0702-001"
    assert message.sender == SENDER
    assert message.sent == datetime(2024, 7, 1, 18, 13, tzinfo=UTC)
    assert message.sent.tzinfo is UTC
    assert (message.status, message.msg_type, message.scope) == ("Actual", "Alert", "Public")
    assert message.references == []
    assert not is_drill(message)
    [info] = message.infos
    assert info.categories == ["Met", "Safety"]
    assert info.event == "山洪灾害预警"
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Severe", "Likely")
    assert info.effective == datetime(2024, 7, 1, 18, 13, tzinfo=UTC)
    assert info.onset == datetime(2024, 7, 1, 19, 0, tzinfo=UTC)
    assert info.expires == datetime(2024, 7, 2, 6, 0, tzinfo=UTC)
    assert info.sender_name == "示范市水文局"
    assert info.headline == "示范市水文局发布大溪河山洪灾害橙色预警"
    assert info.instruction is not None
    assert "向高处转移" in info.instruction
    assert info.web == "https://swj.example.cn/yujing/2024-0702-001"
    assert info.event_codes == [("预警类型", "山洪")]
    assert info.parameters == [("预警级别", "橙色")]
    [area] = info.areas
    assert area.description == "大溪河龙泉镇至大溪乡沿河两岸"
    assert area.polygons == [RIVER]
    assert area.circles == []
    assert admin_codes(area) == ["430181102", "430181201", "430181201203"]
    assert category_for(info) == "flood"
    assert level_for_severity(info.severity) == 2


def test_flood_alert_polygon_covers_the_river_bank_not_the_hills() -> None:
    [area] = parse_cap(sample("flood_alert.xml")).infos[0].areas
    [river] = area.polygons

    assert point_in_polygon(28.3200, 113.9100, river)
    assert point_in_polygon(28.3250, 113.9580, river)
    assert not point_in_polygon(28.3300, 113.9100, river)
    assert not point_in_polygon(28.3000, 113.9400, river)


def test_update_and_cancel_reference_the_alert() -> None:
    alert = parse_cap(sample("flood_alert.xml"))
    update = parse_cap(sample("flood_update.xml"))
    cancel = parse_cap(sample("flood_cancel.xml"))
    original = CapReference(sender=alert.sender, identifier=alert.identifier, sent=alert.sent)

    assert update.msg_type == "Update"
    assert update.references == [original]
    assert update.note == "扩大预警范围至双江镇"
    assert admin_codes(update.infos[0].areas[0]) == ["430181102", "430181201", "430181114"]
    assert cancel.msg_type == "Cancel"
    assert cancel.references == [
        original,
        CapReference(sender=update.sender, identifier=update.identifier, sent=update.sent),
    ]
    assert cancel.references[1].sent == datetime(2024, 7, 1, 20, 5, tzinfo=UTC)


def test_exercise_is_a_drill_even_with_prefixed_namespace() -> None:
    message = parse_cap(sample("landslide_exercise.xml"))

    assert is_drill(message)
    [info] = message.infos
    assert category_for(info) == "geological"
    assert level_for_severity(info.severity) == 3
    [area] = info.areas
    assert area.circles == [(28.4012, 114.0125, 0.5)]
    assert admin_codes(area) == ["430181210205"]


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.xml")))
def test_every_sample_validates_against_the_oasis_schema(name: str) -> None:
    validate_cap(sample(name))


# --- refusals -------------------------------------------------------------------------------


def test_not_xml_names_the_line() -> None:
    reason = reason_of(b"<alert>\n<identifier>x</alert>")
    assert reason.startswith("不是合法的 XML（第 2 行")


def test_empty_body_is_refused() -> None:
    assert reason_of(b"  \n") == "内容为空，不是 CAP 消息"


def test_cap_1_1_namespace_is_refused_and_named() -> None:
    data = flood_alert_text().replace("emergency:cap:1.2", "emergency:cap:1.1").encode()
    reason = reason_of(data)
    assert "urn:oasis:names:tc:emergency:cap:1.1" in reason
    assert "只接受 CAP 1.2" in reason


def test_missing_namespace_is_refused() -> None:
    data = flood_alert_text().replace(' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', "").encode()
    assert "没有命名空间" in reason_of(data)


def test_root_other_than_alert_is_refused() -> None:
    assert "根元素是 <feed>" in reason_of(b'<feed xmlns="http://www.w3.org/2005/Atom"/>')


@pytest.mark.parametrize("element", ["identifier", "sender", "sent", "status", "msgType", "scope"])
def test_missing_mandatory_alert_element_is_named(element: str) -> None:
    reason = reason_of(without(flood_alert_text(), element))
    assert reason.startswith(f"缺少必填元素 <{element}>")


@pytest.mark.parametrize("element", ["category", "event", "urgency", "severity", "certainty"])
def test_missing_mandatory_info_element_is_named(element: str) -> None:
    text = flood_alert_text().replace("<category>Safety</category>", "")
    reason = reason_of(without(text, element))
    assert f"第 1 个 <info> 缺少必填元素 <{element}>" in reason
    assert reason.startswith("第 9 行")


def test_blank_event_is_refused() -> None:
    data = flood_alert_text().replace("<event>山洪灾害预警</event>", "<event> </event>").encode()
    assert "必填元素 <event>（事件）为空" in reason_of(data)


def test_wrong_enumeration_lists_the_allowed_values() -> None:
    data = flood_alert_text().replace("<severity>Severe</severity>", "<severity>High</severity>").encode()
    reason = reason_of(data)
    assert reason.startswith("第 16 行：元素 <severity>（严重程度）的值“High”不被 CAP 1.2 接受")
    assert "Extreme、Severe、Moderate、Minor、Unknown" in reason


def test_utc_z_time_is_refused_with_the_expected_form() -> None:
    data = flood_alert_text().replace("2024-07-02T02:13:00+08:00</sent>", "2024-07-01T18:13:00Z</sent>")
    reason = reason_of(data.encode())
    assert "元素 <sent>（发送时间）的时间“2024-07-01T18:13:00Z”格式不对" in reason
    assert "不用 Z" in reason


def test_element_out_of_order_says_what_belongs_there() -> None:
    text = flood_alert_text()
    data = text.replace("  <status>Actual</status>\n  <msgType>Alert</msgType>\n", "").replace(
        "<scope>Public</scope>", "<scope>Public</scope><status>Actual</status><msgType>Alert</msgType>"
    )
    reason = reason_of(data.encode())
    assert reason.startswith("第 6 行：元素 <scope>（发布范围）不应出现在这里")
    assert reason.endswith("此处应为 <status>")


def test_unknown_element_is_refused_with_its_name() -> None:
    data = flood_alert_text().replace("<scope>Public</scope>", "<scope>Public</scope><level>2</level>")
    reason = reason_of(data.encode())
    assert "元素 <level>不应出现在这里" in reason


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        ("28.32,113.90 28.33,113.92 28.31,113.94 28.30,113.91", "没有闭合：第一个点 28.32,113.9"),
        ("28.32,113.90 28.33,113.92 28.32,113.90", "只有 3 个点"),
        ("113.90,28.32 113.92,28.33 113.94,28.31 113.90,28.32", "超出范围"),
        ("28.32;113.90 28.33,113.92 28.31,113.94 28.32,113.90", "格式不对：应为“纬度,经度”"),
    ],
)
def test_bad_polygon_is_refused(polygon: str, expected: str) -> None:
    data = re.sub(r"<polygon>[^<]*</polygon>", f"<polygon>{polygon}</polygon>", flood_alert_text())
    reason = reason_of(data.encode())
    assert reason.startswith("第 37 行：<polygon> ")
    assert expected in reason


def test_bad_circle_is_refused() -> None:
    text = sample("landslide_exercise.xml").decode()
    data = text.replace("28.4012,114.0125 0.5", "28.4012,114.0125 -1").encode()
    assert "半径“-1”不能为负数" in reason_of(data)


@pytest.mark.parametrize("name", ["flood_update.xml", "flood_cancel.xml"])
def test_update_or_cancel_without_references_is_refused(name: str) -> None:
    data = re.sub(r"\s*<references>[^<]*</references>", "", sample(name).decode()).encode()
    reason = reason_of(data)
    assert "必须用 <references> 指明所更新或解除的原预警" in reason


def test_malformed_reference_is_refused() -> None:
    data = sample("flood_update.xml").decode().replace(f"{SENDER},SFSWJ", f"{SENDER} SFSWJ").encode()
    assert "应为“发送方,标识,发送时间”" in reason_of(data)


@pytest.mark.parametrize("status", ["Test", "Draft", "System"])
def test_non_actual_statuses_are_refused(status: str) -> None:
    data = flood_alert_text().replace("<status>Actual</status>", f"<status>{status}</status>").encode()
    validate_cap(data)
    reason = reason_of(data)
    assert f"为 {status}" in reason
    assert "只接受 Actual（实际）或 Exercise（演练）" in reason


def test_ack_message_is_refused() -> None:
    data = flood_alert_text().replace("<msgType>Alert</msgType>", "<msgType>Ack</msgType>").encode()
    assert "只接受 Alert（发布）、Update（更新）或 Cancel（解除）" in reason_of(data)


def test_identifier_with_a_space_is_refused() -> None:
    data = flood_alert_text().replace("SFSWJ-2024-0702-001", "SFSWJ 2024").encode()
    assert "不得包含空格、逗号" in reason_of(data)


# --- hostile XML ----------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>&lol9;</identifier>
</alert>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY leak SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>x</identifier><sender>&leak;</sender><sent>2024-07-02T02:13:00+08:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
</alert>
"""


def test_billion_laughs_is_refused_without_expansion() -> None:
    started = time.monotonic()
    reason = reason_of(BILLION_LAUGHS)

    assert time.monotonic() - started < 1.0
    assert "不得包含 DOCTYPE 或实体声明" in reason
    assert "lollol" not in reason


def test_external_entity_is_refused_without_reading_the_file() -> None:
    reason = reason_of(XXE)

    assert "不得包含 DOCTYPE 或实体声明" in reason
    assert "root:" not in reason
    with pytest.raises(CapError):
        validate_cap(XXE)


def test_doctype_in_utf16_is_refused_after_parsing() -> None:
    data = XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
    assert "不得包含 DOCTYPE 或实体声明" in reason_of(data)


def test_long_prolog_is_scanned_quickly() -> None:
    started = time.monotonic()
    reason = reason_of(b"<?x?>" * 100_000 + b"<alert/>")
    assert time.monotonic() - started < 1.0
    assert "没有命名空间" in reason


def test_external_dtd_reference_is_refused() -> None:
    data = flood_alert_text().replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">',
    )
    assert "不得包含 DOCTYPE" in reason_of(data.encode())


def test_two_mebibyte_document_is_refused_before_parsing() -> None:
    padding = "雨" * (2 * 1024 * 1024 // 3)
    data = flood_alert_text().replace("<description>", f"<description>{padding}").encode()
    assert len(data) > 2 * 1024 * 1024 - 1024
    reason = reason_of(data)
    assert reason.startswith("CAP 消息过大")
    assert "上限为 1 MiB" in reason


def test_document_of_exactly_the_limit_is_accepted() -> None:
    text = flood_alert_text()
    data = text.replace("<description>", "<description>" + "a" * (MAX_CAP_BYTES - len(text.encode())))
    assert len(data.encode()) == MAX_CAP_BYTES
    assert parse_cap(data.encode()).identifier == "SFSWJ-2024-0702-001"


# --- mappings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "level"), [("Extreme", 1), ("Severe", 2), ("Moderate", 3), ("Minor", 4)]
)
def test_severity_and_level_map_both_ways(severity: str, level: int) -> None:
    assert level_for_severity(severity) == level
    assert severity_for_level(level) == severity


def test_unknown_severity_asks_for_a_level() -> None:
    with pytest.raises(CapError, match="请人工指定预警级别"):
        level_for_severity("Unknown")


@pytest.mark.parametrize("level", [0, 5])
def test_level_out_of_range_is_refused(level: int) -> None:
    with pytest.raises(CapError, match="只能是 1–4"):
        severity_for_level(level)


@pytest.mark.parametrize(
    ("event", "categories", "expected"),
    [
        ("森林火险红色预警", ["Fire"], "forest_fire"),
        ("森林火灾", ["Fire"], "forest_fire"),
        ("山洪灾害预警", ["Met"], "flood"),
        ("城市内涝", ["Met"], "flood"),
        ("防汛Ⅳ级应急响应", ["Other"], "flood"),
        ("泥石流", ["Geo"], "geological"),
        ("暴雨橙色预警", ["Met"], "severe_weather"),
        ("道路结冰黄色预警", ["Transport"], "severe_weather"),
        ("防溺水提醒", ["Safety"], "drowning"),
        ("道路交通事故", ["Transport"], "road_traffic"),
        ("燃气泄漏", ["CBRNE"], "gas"),
        ("煤气中毒提醒", ["Health"], "gas"),
        ("危险化学品火灾", ["Fire"], "hazardous_chemicals"),
        ("氨气泄漏", ["CBRNE"], "hazardous_chemicals"),
        ("居民楼火灾", ["Fire"], "fire"),
        ("传染病疫情", ["Health"], "public_health"),
        ("Flash Flood Warning", ["Met"], "severe_weather"),
        ("Wildfire", ["Safety", "Fire"], "fire"),
        ("Earthquake", ["Geo"], "geological"),
        ("Outbreak", ["Health"], "public_health"),
        ("Bridge closure", ["Transport"], "road_traffic"),
        ("Chemical plume", ["CBRNE"], "hazardous_chemicals"),
        ("停水通知", ["Infra"], "other"),
    ],
)
def test_category_by_event_keyword_then_cap_category(
    event: str, categories: list[str], expected: str
) -> None:
    assert category_for(info_with(event, categories)) == expected


# A U opening north: the notch between the arms is outside.
U_SHAPE = [(0.0, 0.0), (3.0, 0.0), (3.0, 1.0), (1.0, 1.0), (1.0, 2.0), (3.0, 2.0), (3.0, 3.0), (0.0, 3.0)]


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (2.0, 0.5, True),
        (2.0, 2.5, True),
        (0.5, 1.5, True),
        (2.0, 1.5, False),
        (1.5, 1.5, False),
        (3.0, 1.5, False),
        (4.0, 1.0, False),
        (-0.1, 0.5, False),
        (1.0, 1.5, True),
        (3.0, 2.0, True),
        (0.0, 0.0, True),
        (2.0, 0.0, True),
    ],
)
def test_point_in_concave_polygon(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(lat, lon, U_SHAPE) is inside
    assert point_in_polygon(lat, lon, [*U_SHAPE, U_SHAPE[0]]) is inside


def test_admin_codes_accepts_documented_names_and_code_lengths_only() -> None:
    area = CapArea(
        description="示范市",
        geocodes=[
            ("行政区划代码", "430181"),
            ("ADCODE", "430181102"),
            ("GB/T 2260", "430181"),
            ("gb_t_2260", "430181201"),
            ("Admin_Code", " 430181201203 "),
            ("admin-code", "43018120120"),
            ("行政区划代码", "43018A102"),
            ("SAME", "430181"),
            ("邮政编码", "410300"),
        ],
        polygons=[],
        circles=[],
    )
    assert admin_codes(area) == ["430181", "430181102", "430181201", "430181201203"]


# --- rendering ------------------------------------------------------------------------------

CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")


def times_in(data: bytes) -> list[str]:
    return re.findall(r"<(?:sent|expires)>([^<]*)</", data.decode())


def test_rendered_alert_uses_shanghai_time_without_fractions_and_follows_the_schema() -> None:
    data = render_cap(export())

    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    validate_cap(data)
    assert times_in(data) == ["2024-07-02T02:20:05+08:00", "2024-07-02T14:00:00+08:00"]
    assert all(CAP_TIME.fullmatch(t) for t in times_in(data))
    assert "<category>Met</category>" in data.decode()
    assert "<severity>Severe</severity>" in data.decode()


def test_round_trip_keeps_what_the_product_needs() -> None:
    source = export()
    message = parse_cap(render_cap(source))

    assert message.identifier == source.identifier
    assert message.sender == source.sender
    assert message.sent == datetime(2024, 7, 1, 18, 20, 5, tzinfo=UTC)
    assert not is_drill(message)
    [info] = message.infos
    assert info.language == "zh-CN"
    assert category_for(info) == "flood"
    assert level_for_severity(info.severity) == 2
    assert (info.urgency, info.certainty) == ("Immediate", "Likely")
    assert (info.headline, info.description, info.instruction) == (
        source.headline,
        source.description,
        source.instruction,
    )
    assert info.expires == source.expires
    assert info.sender_name == "示范市应急管理局"
    assert info.web == source.web
    [area] = info.areas
    assert area.description == source.area_description
    assert area.polygons == [RIVER]
    assert area.geocodes == source.geocodes
    assert admin_codes(area) == ["430181102", "430181201203"]


ORIGINAL = CapReference(
    sender="yjj.shifan@example.cn",
    identifier="SFYJ-2024-0702-001",
    sent=datetime(2024, 7, 1, 18, 20, 5, tzinfo=UTC),
)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="alert-with-polygon"),
        pytest.param({"polygons": [], "instruction": None, "web": None, "expires": None}, id="alert-minimal"),
        pytest.param(
            {"msg_type": "Update", "identifier": "SFYJ-2024-0702-002", "references": [ORIGINAL], "level": 1},
            id="update",
        ),
        pytest.param(
            {
                "msg_type": "Cancel",
                "identifier": "SFYJ-2024-0702-003",
                "references": [ORIGINAL],
                "note": "洪峰已过，解除预警",
                "certainty": "Observed",
                "polygons": [],
            },
            id="cancel",
        ),
        pytest.param(
            {"status": "Exercise", "category": "forest_fire", "event": "森林火灾演练", "level": 4},
            id="exercise",
        ),
        *(pytest.param({"category": c}, id=f"category-{c}") for c in ("drowning", "gas", "other")),
    ],
)
def test_every_rendered_variant_validates_and_parses_back(changes: dict[str, object]) -> None:
    source = export(**changes)
    data = render_cap(source)

    validate_cap(data)
    message = parse_cap(data)
    assert message.msg_type == source.msg_type
    assert message.references == source.references
    assert message.note == source.note
    assert is_drill(message) is (source.status == "Exercise")
    assert level_for_severity(message.infos[0].severity) == source.level
    assert len(message.infos[0].areas[0].polygons) == len(source.polygons)


def test_rendered_reference_time_is_local() -> None:
    data = render_cap(export(msg_type="Update", references=[ORIGINAL])).decode()
    assert (
        f"<references>{ORIGINAL.sender},{ORIGINAL.identifier},2024-07-02T02:20:05+08:00</references>" in data
    )


def test_render_accepts_any_aware_timezone() -> None:
    sent = datetime(2024, 7, 2, 2, 20, tzinfo=timezone(timedelta(hours=8)))
    assert parse_cap(render_cap(export(sent=sent))).sent == datetime(2024, 7, 1, 18, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sent": datetime(2024, 7, 2, 2, 20)}, "没有时区"),  # noqa: DTZ001
        ({"msg_type": "Update"}, "references 不能为空"),
        ({"status": "Test"}, "只能是 Actual（实际）或 Exercise（演练）"),
        ({"level": 5}, "只能是 1–4"),
        ({"category": "earthquake"}, "预警类别“earthquake”无效"),
        ({"polygons": [RIVER[:-1]]}, "第 1 个多边形没有闭合"),
        ({"identifier": "SFYJ 001"}, "不得包含空格"),
        ({"event": " "}, "为空"),
    ],
)
def test_render_refuses_what_cap_cannot_carry(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(CapError) as caught:
        render_cap(export(**changes))
    assert expected in caught.value.reason
