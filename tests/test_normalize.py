import pytest
from django.core.exceptions import ValidationError

from leads.normalize import (
    fold_for_search,
    given_name,
    normalize_email,
    normalize_name,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lan@example.com", "lan@example.com"),
        ("  Lan.Nguyen@Example.COM ", "lan.nguyen@example.com"),
        ("lan@example.com\u00a0", "lan@example.com"),  # no-break space
        ("\u3000lan@example.com\u3000", "lan@example.com"),  # full-width space
        ("\u2003lan@example.com\t\n", "lan@example.com"),  # em space, tab, newline
        ("ｌａｎ＠example.com", "lan@example.com"),  # full-width letters and @
        ("lan@bách-khoa.vn", "lan@xn--bch-khoa-8ya.vn"),  # IDN to one form
        ("lan@BÁCH-KHOA.VN", "lan@xn--bch-khoa-8ya.vn"),
        ("lan@xn--bch-khoa-8ya.vn", "lan@xn--bch-khoa-8ya.vn"),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_emails_normalise_to_one_form(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "lan\u200b@example.com",  # zero-width space
        "lan@exam\u200dple.com",  # zero-width joiner
        "\ufefflan@example.com",  # byte-order mark
        "lan\x00@example.com",  # control character
        "lan nguyen@example.com",
        "lan@@example.com",
        "not-an-email",
        "lan@",
    ],
)
def test_bad_emails_are_rejected(raw):
    with pytest.raises(ValidationError):
        normalize_email(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "0912-345-678",
        "(091) 234-5678",
        "84912345678",
        "+84912345678",
        "+84 912 345 678",
        "+84 (0) 912 345 678",
        "+84-912-345-678",
        "\u00a00912345678\u3000",
        "０９１２３４５６７８",  # full-width digits
    ],
)
def test_vietnamese_mobile_numbers_are_one_number(raw):
    assert normalize_phone(raw) == "+84912345678"


def test_landlines_and_foreign_numbers_keep_their_country():
    assert normalize_phone("028 3822 1234") == "+842838221234"
    assert normalize_phone("+1 650 253 0000") == "+16502530000"


@pytest.mark.parametrize("raw", ["12", "abc", "0912", "+84 000", "091\u200b2345678"])
def test_bad_phones_are_rejected(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Decomposed (NFD) input, as some keyboards and macOS send it.
        ("Nguye\u0302\u0303n Va\u0306n An", "Nguyễn Văn An"),
        ("  Trần   Thị\tBích  ", "Trần Thị Bích"),
        ("Đặng Thu Thảo", "Đặng Thu Thảo"),
        ("Lê\u200b Minh", "Lê Minh"),
    ],
)
def test_names_are_nfc_with_single_spaces(raw, expected):
    assert normalize_name(raw) == expected


def test_search_folding_ignores_diacritics_and_case():
    assert fold_for_search("Nguyễn Đức Thắng", "Công ty ABC") == (
        "nguyen duc thang cong ty abc"
    )


@pytest.mark.parametrize(
    ("full_name", "given"),
    [
        ("Nguyễn Thị Mai", "Mai"),
        ("Đặng Thu Thảo", "Thảo"),
        ("  trần   văn  an ", "an"),
        ("John Smith", "John"),
        ("Mai", "Mai"),
        ("", ""),
    ],
)
def test_the_given_name_follows_vietnamese_order(full_name, given):
    assert given_name(full_name) == given
