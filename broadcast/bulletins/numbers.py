"""Arabic numerals to Chinese words: cardinals, digit strings, decimals (pure)."""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"
_GROUP_UNITS = ("", "万", "亿", "万亿")
_PLACE_UNITS = ("千", "百", "十", "")
MAX_CARDINAL = 10**16 - 1


def digit_string(digits: str, *, phone: bool = False) -> str:
    """Read digit by digit; on the phone 1 is 幺 so it is not mistaken for 七."""
    words = "".join(DIGITS[int(d)] for d in digits)
    return words.replace("一", "幺") if phone else words


def _group(n: int) -> str:
    """0 < n < 10000, with one 零 for each run of inner zeros."""
    out: list[str] = []
    pending_zero = False
    for digit, unit in zip(f"{n:04d}", _PLACE_UNITS, strict=True):
        if digit == "0":
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(DIGITS[int(digit)] + unit)
    return "".join(out)


def cardinal(n: int) -> str:
    """A quantity the way it is said: 9305 -> 九千三百零五, 15 -> 十五, 10005 -> 一万零五."""
    if n < 0:
        return "负" + cardinal(-n)
    if n == 0:
        return "零"
    if n > MAX_CARDINAL:
        return digit_string(str(n))
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out: list[str] = []
    skipped = False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            skipped = bool(out)
            continue
        if out and (skipped or group < 1000):
            out.append("零")
        out.append(_group(group) + _GROUP_UNITS[index])
        skipped = False
    words = "".join(out)
    return words[1:] if words.startswith("一十") else words


def decimal(number: str) -> str:
    """'58.14' -> 五十八点一四; the integer part is a quantity, the fraction digit by digit."""
    whole, _, fraction = number.partition(".")
    words = integer(whole or "0")
    return f"{words}点{digit_string(fraction)}" if fraction else words


def integer(digits: str) -> str:
    """A run of digits as a quantity; leading zeros or very long runs are codes, read digit by digit."""
    if len(digits) > 16 or (len(digits) > 1 and digits.startswith("0")):
        return digit_string(digits)
    return cardinal(int(digits))
