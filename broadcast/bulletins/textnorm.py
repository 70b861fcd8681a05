"""Text for the ear: numbers, dates, times, percentages and units written out the way a Chinese
announcer reads them, and long text split at sentence punctuation (pure).

TTS engines read Arabic numerals inconsistently (espeak says "%" in English, a year as a
quantity), so every bulletin is normalised before synthesis; the normalised text is also what
the TTS cache is keyed by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date

from broadcast.bulletins.numbers import decimal, digit_string, integer

_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"％": "%", "．": "."})
_NUM = r"\d+(?:\.\d+)?"
_DASH = r"[-~～—–]"

HOTLINES = (
    "110",
    "112",
    "119",
    "120",
    "122",
    "12110",
    "12119",
    "12315",
    "12345",
    "12350",
    "12369",
    "12379",
    "12395",
    "95119",
    "96119",
)
# A hotline number followed by one of these is a quantity ("120米"), not a phone number.
_QUANTITY_AFTER = "个人名次天年月日号岁米元户座处辆台条位只种项家栋所级度分秒点万千百亿公吨斤"

UNITS = {
    "km/h": "公里每小时",
    "m/s": "米每秒",
    "km²": "平方公里",
    "m²": "平方米",
    "m³": "立方米",
    "km": "公里",
    "mm": "毫米",
    "cm": "厘米",
    "kg": "公斤",
    "kW": "千瓦",
    "kV": "千伏",
    "℃": "摄氏度",
    "°C": "摄氏度",
    "m": "米",
}
# Before these a lone 2 is 两 (两个, 两小时), elsewhere 二 (二月, 二级).
_TWO_AS_LIANG = (
    "个|人|名|次|天|小时|点|辆|台|户|座|处|起|条|位|只|种|项|家|栋|所|周|年|岁|公里|米|吨|斤|万|千"
)

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _phone(match: re.Match[str]) -> str:
    groups = re.findall(r"\d+", match.group(0))
    return "，".join(digit_string(g, phone=True) for g in groups)


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = (int(g) for g in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        return match.group(0)
    return f"{digit_string(match.group(1))}年{integer(str(month))}月{integer(str(day))}日"


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    second = match.group(3)
    if hour > 24 or minute > 59 or (second is not None and int(second) > 59):
        return match.group(0)
    words = f"{integer(str(hour))}点"
    if minute or second:
        words += f"{'零' if minute < 10 else ''}{integer(str(minute))}分"
    if second and int(second):
        words += f"{integer(str(int(second)))}秒"
    return words


def _unit(match: re.Match[str]) -> str:
    return match.group(1) + UNITS[match.group(2)]


def _unit_pattern() -> str:
    symbols = sorted(UNITS, key=len, reverse=True)
    return rf"({_NUM})\s*({'|'.join(re.escape(s) for s in symbols)})(?![A-Za-z²³/])"


RULES: list[Rule] = [
    (re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d.])"), lambda m: m.group(0).replace(",", "")),
    (
        re.compile(r"(电话|热线|拨打|号码|手机|致电|报警|求助|举报|联系方式)([：:\s是为]*)(\d[\d-]{2,}\d)"),
        lambda m: m.group(1) + m.group(2) + _phone(m),
    ),
    (re.compile(r"(?<!\d)(?:0\d{2,3}-\d{7,8}|1[3-9]\d{9})(?!\d)"), _phone),
    (
        re.compile(rf"(?<![\d.])(?:{'|'.join(HOTLINES)})(?![\d.%A-Za-z{_QUANTITY_AFTER}])"),
        _phone,
    ),
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d.])"), _iso_date),
    (re.compile(r"(?<![\d.])(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?(?!\d)"), _time),
    (re.compile(rf"(?<![\d.])[-−]({_NUM})\s*(?:℃|°C)"), lambda m: f"零下{m.group(1)}摄氏度"),
    (re.compile(_unit_pattern()), _unit),
    (
        re.compile(rf"(?<!\d)(\d{{4}})\s*(?:{_DASH}|至|到)\s*(\d{{4}})\s*年"),
        lambda m: f"{digit_string(m.group(1))}至{digit_string(m.group(2))}年",
    ),
    (re.compile(r"(?<![\d.])(\d{4})\s*年"), lambda m: f"{digit_string(m.group(1))}年"),
    (
        re.compile(rf"(?<![\d.])({_NUM})%?\s*(?:{_DASH}|至|到)\s*({_NUM})\s*%"),
        lambda m: f"百分之{decimal(m.group(1))}至百分之{decimal(m.group(2))}",
    ),
    (re.compile(rf"({_NUM})\s*%"), lambda m: f"百分之{decimal(m.group(1))}"),
    (re.compile(rf"({_NUM})\s*‰"), lambda m: f"千分之{decimal(m.group(1))}"),
    (
        re.compile(rf"(?<![\d.])({_NUM})\s*{_DASH}\s*({_NUM})(?![\d.])"),
        lambda m: f"{decimal(m.group(1))}至{decimal(m.group(2))}",
    ),
    (re.compile(rf"(?<![\d.])2(?=(?:{_TWO_AS_LIANG}))"), lambda m: "两"),
    (re.compile(_NUM), lambda m: decimal(m.group(0))),
    (
        re.compile(
            r"(?<=[零一二三四五六七八九十百千万亿点分秒年月日号])\s*[-~～—–]\s*(?=[零一二三四五六七八九十两])"
        ),
        lambda m: "至",
    ),
    (re.compile(r"[ \t\u3000]+"), lambda m: " "),
]


def normalize(text: str) -> str:
    """The text as it should be spoken; idempotent, so normalising twice changes nothing."""
    text = unicodedata.normalize("NFC", text).translate(_FULLWIDTH).replace("\r\n", "\n")
    for pattern, replace in RULES:
        text = pattern.sub(replace, text)
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


def has_readable(text: str) -> bool:
    """Whether anything in the text would be spoken (letters or digits, not only punctuation)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


_SENTENCE_END = "。！？；!?;\n"
_CLAUSE_END = "，、,：:"
_NUMBERISH = re.compile(r"[0-9A-Za-z.%零一二三四五六七八九十百千万亿两幺点]")


def _split_after(text: str, marks: str) -> list[str]:
    parts, start = [], 0
    for index, char in enumerate(text):
        if char in marks:
            parts.append(text[start : index + 1])
            start = index + 1
    parts.append(text[start:])
    return [stripped for part in parts if (stripped := part.strip())]


def _hard_split(text: str, max_chars: int) -> list[str]:
    """Cut a clause with no punctuation, backing off so no number is cut in two."""
    parts = []
    while len(text) > max_chars:
        cut = max_chars
        while cut > 1 and _NUMBERISH.match(text[cut - 1]) and _NUMBERISH.match(text[cut]):
            cut -= 1
        if cut == 1:
            cut = max_chars
        parts.append(text[:cut])
        text = text[cut:]
    return [*parts, text] if text else parts


def _merge(pieces: list[str], max_chars: int) -> list[str]:
    chunks: list[str] = []
    for piece in pieces:
        if chunks and (len(chunks[-1]) + len(piece) <= max_chars or not has_readable(piece)):
            chunks[-1] += piece
        elif has_readable(piece):
            chunks.append(piece)
    return chunks


def split_for_speech(text: str, *, max_chars: int = 100) -> list[str]:
    """Chunks of at most ``max_chars`` (except a single unbreakable number), cut at sentence ends,
    then at commas, then anywhere outside a number; punctuation-only pieces join their neighbour."""
    pieces: list[str] = []
    for sentence in _split_after(text, _SENTENCE_END):
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        for clause in _split_after(sentence, _CLAUSE_END):
            pieces.extend(_hard_split(clause, max_chars))
    return _merge(pieces, max_chars)
