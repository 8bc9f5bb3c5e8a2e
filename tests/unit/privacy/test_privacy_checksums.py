from __future__ import annotations

import pytest

from privacy.checksums import iban_is_valid, luhn_is_valid


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("79927398713", True),
        ("4111111111111112", False),  # last digit off by one
        ("4111111111111121", False),  # two digits swapped
        ("1234567890123456", False),
        ("0", False),
        ("", False),
        ("4111 1111 1111 1111", False),  # separators are the caller's job
        ("٤١١١١١١١١١١١١١١١", False),  # Arabic-Indic digits are not card digits
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_is_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89370400440532013000", True),
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("FR1420041010050500013M02606", True),
        ("NO9386011117947", True),
        ("DE89370400440532013001", False),  # check digits no longer match
        ("DE98370400440532013000", False),  # check digits swapped
        ("DE8937040044053201300", False),  # one character short for Germany
        ("GB82west12345698765432", False),  # lower case is not an IBAN as written
        ("XX00ABCDEFGHIJKLMNOP", False),
        ("DE89-3704-0044-0532-0130-00", False),
        ("", False),
    ],
)
def test_iban(iban: str, valid: bool) -> None:
    assert iban_is_valid(iban) is valid
