"""Check digits that tell a real card number or IBAN from a look-alike."""

from __future__ import annotations

__all__ = ["iban_is_valid", "luhn_is_valid"]


def luhn_is_valid(digits: str) -> bool:
    """Return whether ``digits`` (only 0-9, at least 2) passes the Luhn check."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# ISO 13616 lengths of the countries whose IBANs people most often type; others are
# accepted on the mod-97 check and the 15..34 general bound alone.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24,
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IS": 26,
    "IT": 27,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "TR": 26,
    "AE": 23,
    "SA": 24,
    "IL": 23,
    "BR": 29,
}


def iban_is_valid(iban: str) -> bool:
    """Return whether ``iban`` (spaces allowed, upper case) has a valid length for
    its country and passes the ISO 7064 mod-97 check."""
    compact = iban.replace(" ", "")
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    if compact != compact.upper():
        return False
    country, check = compact[:2], compact[2:4]
    if not country.isalpha() or not country.isupper() or not check.isdigit():
        return False
    expected = _IBAN_LENGTHS.get(country)
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1
