"""Phone numbers: the one rule that turns what a CRM export holds into E.164.

Used by the cleaning step (what is sent to the API) and by the match keys (what is compared),
so a number is read the same way everywhere.

The rule:

- A number written with ``+`` (or the international prefix ``00``) carries its own country.
- Otherwise it is read in a *region*: the row's own country when the export has a country
  column (see :func:`region_of_country`), else the push's ``--default-region``.
- The result must be a *valid* number of its country (``phonenumbers.is_valid_number``: a
  known area code / mobile prefix and the right length), not merely a *possible* one (right
  length). So ``04 50 11 22 33`` read in US (``+1 0450112233``, no US area code starts with 0)
  is rejected, and read in FR it is ``+33450112233``.
- A rejection says the value, the region it was read in, and how to fix it, naming the
  regions where the number *is* valid when there are some.

Country names are recognised in the languages of the CLDR (through Babel): ``France``,
``Frankreich``, ``Deutschland``, ``Allemagne``, ISO 3166 alpha-2 and alpha-3 codes (``FR``,
``FRA``), and a few everyday names CLDR lists no translation for (``USA``, ``UK``, ``England``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import phonenumbers

#: Most regions named in a "valid in …" hint.
_HINT_REGIONS: Final = 3
#: Regions tried for that hint, in this order (large markets, where a CRM's contacts most often
#: live), so ``04 50 11 22 33`` suggests FR rather than the alphabetically first of a dozen.
_HINT_ORDER: Final = (
    "US", "GB", "FR", "DE", "IN", "ES", "IT", "NL", "BE", "CA", "AU", "BR", "MX", "JP", "CH",
    "AT", "SE", "NO", "DK", "FI", "IE", "PT", "PL", "SG", "ZA", "NZ", "AE", "CN",
)  # fmt: skip
#: Locales whose country names are recognised: the languages CRM exports are commonly written
#: in. Loading every CLDR locale would take seconds for no gain.
_NAME_LOCALES: Final = (
    "en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "nb", "nn", "fi", "is", "pl", "cs",
    "sk", "sl", "hr", "sr", "hu", "ro", "bg", "el", "tr", "ru", "uk", "et", "lv", "lt", "ga",
    "ca", "eu", "gl", "ja", "zh", "zh_Hant", "ko", "ar", "he", "hi", "id", "ms", "th", "vi",
)  # fmt: skip
#: Everyday names with no CLDR entry (CLDR keeps "United States", "United Kingdom").
_EXTRA_NAMES: Final = {
    "usa": "US",
    "us": "US",
    "unitedstatesofamerica": "US",
    "america": "US",
    "uk": "GB",
    "greatbritain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northernireland": "GB",
    "holland": "NL",
}
_PUNCTUATION = re.compile(r"[\s\-().\u00a0/]")


@dataclass(frozen=True)
class PhoneResult:
    """A phone value read in a region.

    Attributes:
        e164: The number in E.164 when it is valid, else ``None``.
        error: Why it is not (names the value, the region and the fix), else ``None``.
    """

    e164: str | None
    error: str | None


def _fold(text: str) -> str:
    """Lower case, accents and punctuation removed: ``Côte d’Ivoire`` → ``cotedivoire``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _add_codes(table: dict[str, str]) -> None:
    from babel.core import get_global

    regions = phonenumbers.SUPPORTED_REGIONS
    for code in regions:
        table[code.casefold()] = code
    for alias, targets in get_global("territory_aliases").items():
        if len(alias) == 3 and alias.isalpha() and targets and targets[0] in regions:
            table.setdefault(alias.casefold(), targets[0])  # alpha-3: FRA, DEU, GBR


def _add_names(table: dict[str, str], locales: tuple[str, ...]) -> None:
    from babel import Locale

    for locale in locales:
        for code, name in Locale.parse(locale).territories.items():
            if code in phonenumbers.SUPPORTED_REGIONS:
                table.setdefault(_fold(name), code)


@functools.cache
def _common_country_table() -> dict[str, str]:
    """The first entries of :func:`_country_table`: codes and the first locale's names.

    Loading all the locales' names takes ~0.5 s (babel merges each locale's data), paid by
    every push whose export has a country column; codes and English names answer most cells,
    and being a prefix of the full table built the same way, they answer them identically.
    """
    table: dict[str, str] = {}
    _add_codes(table)
    _add_names(table, _NAME_LOCALES[:1])
    return table


@functools.cache
def _country_table() -> dict[str, str]:
    table = dict(_common_country_table())
    _add_names(table, _NAME_LOCALES[1:])
    for name, code in _EXTRA_NAMES.items():
        table.setdefault(name, code)
    return table


def region_of_country(value: str | None) -> str | None:
    """The ISO 3166 region of a country cell (a name in a common language or an ISO code).

    Args:
        value: ``"France"``, ``"FR"``, ``"fra"``, ``"Deutschland"``, ``"United States"``, …

    Returns:
        The two-letter region (``"FR"``), or ``None`` when the cell is empty or not a country
        ``phonenumbers`` knows.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    folded = _fold(text)
    common = _common_country_table().get(folded)
    if common is not None:
        return common
    return _country_table().get(folded) or _country_table().get(text.casefold())


def check_region(region: str | None) -> str | None:
    """Upper-cased region, or ``None``.

    Raises:
        ValueError: When ``region`` is not a region ``phonenumbers`` knows; the message gives
            examples.
    """
    if not region:
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"unknown region {region!r}: use an ISO 3166 code such as US, GB, FR, DE, IN"
        )
    return code


def _compact(text: str) -> str:
    compact = _PUNCTUATION.sub("", text)
    return "+" + compact[2:] if compact.startswith("00") else compact


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _valid_regions(text: str) -> list[str]:
    """Regions in which a national-format number would be valid (for the hint)."""
    found: list[str] = []
    # Only the common regions: trying all 245 costs ~25 ms per distinct bad number, too much
    # for an export with thousands of them.
    for region in _HINT_ORDER:
        number = _parse(text, region)
        if number is not None and phonenumbers.is_valid_number_for_region(number, region):
            found.append(region)
    return found


def _show(value: str) -> str:
    shown = value if len(value) <= 40 else value[:39] + "…"
    return '"' + shown.replace('"', '\\"') + '"'


def to_e164(
    value: str, region: str | None, *, country: str | None = None, hint: bool = True
) -> PhoneResult:
    """Read one phone value in a region; valid numbers come back in E.164.

    Args:
        value: The cell as written (``"04 50 11 22 33"``, ``"+33 4 50 11 22 33"``).
        region: Region for numbers without a country code (``None``: they must carry one).
        country: The row's country cell when ``region`` comes from it (worded in the error,
            whose fix is then to check that cell rather than to pass ``--default-region``).
        hint: Name the regions where an invalid national number would be valid (~4 ms per
            number; callers checking thousands of bad numbers stop hinting after a while).

    Returns:
        A :class:`PhoneResult`: ``e164`` set when the number is valid, else ``error``, e.g.
        ``"04 50 11 22 33" is not a valid phone number in US (it is valid in FR): give the
        row's country in a country column, write it with +<country code>, or set
        --default-region FR``.
    """
    text = value.strip()
    e164 = _valid_e164(text, region)
    if e164 is not None:
        return PhoneResult(e164, None)
    return PhoneResult(
        None, _reason(text, region, _compact(text).startswith("+"), country, hint=hint)
    )


def _valid_e164(text: str, region: str | None) -> str | None:
    number = _parse(text, region)
    if (number is None or not phonenumbers.is_valid_number(number)) and _compact(text).startswith(
        "+"
    ):
        number = _parse(_compact(text), None)  # "00 33 …": the international prefix
    if number is not None and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _reason(
    text: str, region: str | None, international: bool, country: str | None, *, hint: bool
) -> str:
    shown = _show(text)
    if international:
        return (
            f"{shown} is not a valid phone number (wrong country code, area code or length "
            "after the +)"
        )
    searched = hint and len(text) <= 40
    elsewhere = [r for r in _valid_regions(text) if r != region] if searched else []
    where = f"in {region}" if region else "without a country code"
    if country is not None and region is not None:
        where += f" (the row's country {_show(country)})"
        fix = "(valid in " + ", ".join(elsewhere[:_HINT_REGIONS]) + ")" if elsewhere else ""
        fix = (
            fix + ": " if fix else ""
        ) + "check the row's country, or write it with +<country code>"
    elif elsewhere:
        listed = ", ".join(elsewhere[:_HINT_REGIONS])
        more = (
            f" and {len(elsewhere) - _HINT_REGIONS} more" if len(elsewhere) > _HINT_REGIONS else ""
        )
        fix = (
            f"(valid in {listed}{more}): give the row's country in a country column, write it "
            f"with +<country code>, or use --default-region {elsewhere[0]}"
        )
    elif searched:
        fix = "(in no country either): check the digits, or write it with +<country code>"
    else:
        fix = (
            "(check the digits, give the row's country in a country column, write it with "
            "+<country code>, or use --default-region)"
        )
    return f"{shown} is not a valid phone number {where} {fix}"


def phone_key(value: str | None, region: str | None) -> str | None:
    """The comparable form of a phone: E.164 when valid (same rule as :func:`to_e164`).

    A stored number that is not valid (written before this rule, or kept on purpose) is
    compared as written without punctuation, so it still equals the same text in an export.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    e164 = _valid_e164(text, region)
    return e164 if e164 is not None else _compact(text)
