"""Text for the ear: a table of written forms and how an announcer reads them."""

from __future__ import annotations

import pytest

from broadcast.bulletins.numbers import cardinal, decimal, digit_string
from broadcast.bulletins.textnorm import has_readable, normalize, split_for_speech


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "零"),
        (7, "七"),
        (10, "十"),
        (15, "十五"),
        (20, "二十"),
        (110, "一百一十"),
        (1005, "一千零五"),
        (1050, "一千零五十"),
        (1278, "一千二百七十八"),
        (9305, "九千三百零五"),
        (10005, "一万零五"),
        (100000, "十万"),
        (1000500, "一百万零五百"),
        (45000000, "四千五百万"),
        (100010000, "一亿零一万"),
        (-3, "负三"),
    ],
)
def test_cardinal(number: int, words: str) -> None:
    assert cardinal(number) == words


def test_decimal_and_digits() -> None:
    assert decimal("58.14") == "五十八点一四"
    assert decimal("0.5") == "零点五"
    assert digit_string("2022") == "二零二二"
    assert digit_string("12119", phone=True) == "幺二幺幺九"


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("2022年", "二零二二年"),
        ("２０２６年１０月１日", "二零二六年十月一日"),
        ("10月1日", "十月一日"),
        ("2026-10-01", "二零二六年十月一日"),
        ("2026/5/12", "二零二六年五月十二日"),
        ("2022-2023年", "二零二二至二零二三年"),
        ("12:30", "十二点三十分"),
        ("06:05", "六点零五分"),
        ("12：00", "十二点"),
        ("06:30-07:30", "六点三十分至七点三十分"),
        ("58.14%", "百分之五十八点一四"),
        ("10%-20%", "百分之十至百分之二十"),
        ("5‰", "千分之五"),
        ("9305个", "九千三百零五个"),
        ("9,305个点位", "九千三百零五个点位"),
        ("1278人", "一千二百七十八人"),
        ("共计45000000元", "共计四千五百万元"),
        ("2个人", "两个人"),
        ("2月", "二月"),
        ("风力5级", "风力五级"),
        ("“4.18”事故", "“四点一八”事故"),
        ("0.5米", "零点五米"),
        ("15-60", "十五至六十"),
        ("15~60km", "十五至六十公里"),
        ("3mm", "三毫米"),
        ("时速80km/h", "时速八十公里每小时"),
        ("-5℃", "零下五摄氏度"),
        ("气温-5℃至3℃", "气温零下五摄氏度至三摄氏度"),
        ("拨打12119或110", "拨打幺二幺幺九或幺幺零"),
        ("火警119，急救120。", "火警幺幺九，急救幺二零。"),
        ("报警电话：110", "报警电话：幺幺零"),
        ("手机13812345678", "手机幺三八幺二三四五六七八"),
        ("0731-88886666", "零七三幺，八八八八六六六六"),
        ("高120米", "高一百二十米"),
        ("编号007", "编号零零七"),
        ("村民朋友们  你好", "村民朋友们 你好"),
    ],
)
def test_normalize(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_normalize_is_idempotent() -> None:
    text = "2026年10月1日12:30起，森林火险等级4级，降水概率58.14%，请拨打12119。"
    once = normalize(text)
    assert normalize(once) == once
    assert not any(ch.isdigit() for ch in once)


def test_readable() -> None:
    assert has_readable("你好")
    assert has_readable("110")
    assert not has_readable("。，！？…… \n")


def test_split_prefers_sentences_then_commas() -> None:
    sentence = "今天进入森林防火期，严禁野外用火。"
    chunks = split_for_speech(sentence * 10, max_chars=40)
    assert all(len(c) <= 40 for c in chunks)
    assert all(c.endswith("。") for c in chunks)
    assert "".join(chunks) == sentence * 10

    long_sentence = "，".join(["严禁上坟烧纸"] * 12) + "。"
    chunks = split_for_speech(long_sentence, max_chars=30)
    assert all(len(c) <= 30 for c in chunks)
    assert all(c.endswith(("，", "。")) for c in chunks)


def test_split_never_cuts_a_number() -> None:
    text = "请" * 95 + "拨打电话13812345678"
    chunks = split_for_speech(text, max_chars=100)
    assert "".join(chunks) == text
    assert any("13812345678" in c for c in chunks)


def test_split_keeps_punctuation_only_pieces_with_their_neighbour() -> None:
    assert split_for_speech("你好。！！！\n\n再见？") == ["你好。！！！再见？"]
    assert split_for_speech("。。。") == []
