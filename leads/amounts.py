"""Money amounts as people write them: "120.000.000", "120,000,000.00",
"120 triệu", "1,5 tỷ", "1 tỷ 200 triệu".

One parser for every path that reads an amount typed by a person: the
capture of a stated budget and the sales forms (BANT budget, opportunity
amount). Pure functions, no database.
"""

import re
import unicodedata
from decimal import Decimal, InvalidOperation

# Bant.amount and Opportunity.amount: max_digits=18, decimal_places=2.
AMOUNT_LIMIT = Decimal(10) ** 16

# Magnitude words, Vietnamese (with and without diacritics) and short forms.
_MAGNITUDES = {
    "nghìn": 3,
    "nghin": 3,
    "ngàn": 3,
    "ngan": 3,
    "k": 3,
    "triệu": 6,
    "trieu": 6,
    "tr": 6,
    "m": 6,
    "tỷ": 9,
    "tỉ": 9,
    "ty": 9,
    "ti": 9,
    "b": 9,
}
_CURRENCY_WORDS = ("vnđ", "vnd", "đồng", "dong", "đ", "usd", "eur")
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"
_CURRENCY = re.compile(
    _NOT_LETTER_BEFORE
    + "(?:"
    + "|".join(sorted(map(re.escape, _CURRENCY_WORDS), key=len, reverse=True))
    + ")"
    + _NOT_LETTER_AFTER
    + r"|[₫$€£¥]"
)
_UNIT = (
    "(?:"
    + "|".join(sorted(map(re.escape, _MAGNITUDES), key=len, reverse=True))
    + ")"
    + _NOT_LETTER_AFTER
)
_PART = re.compile(rf"(\d[\d.,]*)\s*({_UNIT})?\.?\s*")
# A space (also no-break or thin) between digit groups: "50 000 000".
_SPACE_GROUP = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?!\d))")


def _grouped(text: str, separator: str) -> bool:
    """Whether text is digits in thousands groups: 1-3 digits, then 3s."""
    groups = text.split(separator)
    return (
        all(group.isdigit() for group in groups)
        and 1 <= len(groups[0]) <= 3
        and all(len(group) == 3 for group in groups[1:])
    )


def _number(text: str, *, scaled: bool) -> Decimal | None:
    """One number in local notation, or None when unreadable or ambiguous.

    With both "." and "," the last one is the decimal mark; one kind used
    more than once groups thousands; one mark used once is a decimal mark,
    except before exactly three digits, where it groups thousands ("2,000")
    unless a magnitude word follows ("1.500 triệu" may be 1.5 or 1500).
    """
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        mark = "." if text.rfind(".") > text.rfind(",") else ","
        group = "," if mark == "." else "."
        whole, _, fraction = text.partition(mark)
        if mark in fraction or not _grouped(whole, group):
            return None
        whole = whole.replace(group, "")
    elif dots or commas:
        mark = "." if dots else ","
        if text.count(mark) > 1:
            if not _grouped(text, mark):
                return None
            whole, fraction = text.replace(mark, ""), ""
        else:
            whole, _, fraction = text.partition(mark)
            if len(fraction) == 3 and 1 <= len(whole) <= 3 and whole != "0":
                if scaled:
                    return None
                whole, fraction = whole + fraction, ""
    else:
        whole, fraction = text, ""
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    try:
        return Decimal(f"{whole}.{fraction}" if fraction else whole)
    except InvalidOperation:
        return None


def read_amount(raw: str, currency: str = "") -> Decimal | None:
    """The amount written in raw, unbounded; None when it cannot be read
    without guessing (a range, words, an ambiguous separator).

    Dong have no minor unit: a VND amount that is not whole ("1.5" with no
    magnitude word, likely meant as millions) is not read.
    """
    text = unicodedata.normalize("NFC", str(raw)).casefold().strip()
    if currency:
        text = re.sub(
            _NOT_LETTER_BEFORE + re.escape(currency.casefold()) + _NOT_LETTER_AFTER,
            " ",
            text,
        )
    text = _CURRENCY.sub(" ", text)
    text = _SPACE_GROUP.sub("", text).strip()
    if not text or len(text) > 100:
        return None
    parts = []
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            return None
        parts.append((match[1], _MAGNITUDES[match[2]] if match[2] else 0))
        position = match.end()
    if not parts:
        return None
    if len(parts) > 1 and not all(exponent for _, exponent in parts):
        return None  # "1 tỷ 2": two hundred million or two dong?
    total = Decimal(0)
    previous = None
    for text_number, exponent in parts:
        value = _number(text_number.rstrip(".,"), scaled=exponent > 0)
        if value is None:
            return None
        if previous is not None and (
            exponent >= previous or value >= Decimal(10) ** (previous - exponent)
        ):
            return None  # units must fall: "1 tỷ 200 triệu", not "200 triệu 1 tỷ"
        total += value.scaleb(exponent)
        previous = exponent
    if currency.upper() == "VND" and total != total.to_integral_value():
        return None
    return Decimal(format(total, "f"))


def parse_amount(raw: str, currency: str) -> Decimal | None:
    """Read a stated amount; None when unreadable or too large to store
    (the amount is then unknown, it never fails the caller)."""
    amount = read_amount(raw, currency)
    if amount is None or amount >= AMOUNT_LIMIT:
        return None
    return amount
