"""Phone numbers to E.164 with libphonenumber, and a reason a person understands when not."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}
# What a spreadsheet makes of a long number typed into a cell: 9.19812E+11.
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")


class InvalidPhone(ValueError):
    """The reason a phone cell is not a valid number."""


def normalize_phone(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164 with '+' (numbers without '+' are read in ``region``).

    ``region`` defaults to settings.DEFAULT_PHONE_REGION. Raises InvalidPhone.
    """
    text = raw.strip().lstrip("'")
    if not text:
        raise InvalidPhone("the phone is empty")
    if _SCIENTIFIC.match(text):
        raise InvalidPhone(
            f"{text!r} is a number a spreadsheet rounded: format the column as text and export again"
        )
    region = region or settings.DEFAULT_PHONE_REGION
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as error:
        raise InvalidPhone(
            f"{_PARSE_REASONS.get(error.error_type, 'not a phone number')}"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        possible = phonenumbers.is_possible_number_with_reason(parsed)
        if possible in _POSSIBLE_REASONS:
            raise InvalidPhone(_POSSIBLE_REASONS[possible])
        where = phonenumbers.region_code_for_number(parsed) or f"+{parsed.country_code}"
        raise InvalidPhone(f"not a valid number in {where}")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
