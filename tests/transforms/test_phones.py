"""The one phone rule (transforms.phones): read in a region, valid there, E.164."""

from __future__ import annotations

import pytest

from pipelines.sink.keys import normalize_phone
from transforms import phones
from transforms.phones import phone_key, region_of_country, to_e164


@pytest.mark.parametrize(
    ("cell", "region"),
    [
        ("France", "FR"),
        ("FR", "FR"),
        ("fra", "FR"),
        ("Frankreich", "FR"),
        ("Deutschland", "DE"),
        ("Allemagne", "DE"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("USA", "US"),
        ("United States", "US"),
        ("España", "ES"),
        ("Pays-Bas", "NL"),
        ("Côte d’Ivoire", "CI"),
        ("日本", "JP"),
        ("Schweiz", "CH"),
    ],
)
def test_country_names_in_many_languages_and_iso_codes(cell: str, region: str) -> None:
    assert region_of_country(cell) == region


@pytest.mark.parametrize("cell", ["", "  ", "Narnia", "XX", None])
def test_unknown_countries_give_no_region(cell: str | None) -> None:
    assert region_of_country(cell) is None


def test_possible_is_not_enough_the_number_must_be_valid() -> None:
    # +1 0450112233 has the length of a US number, but no NANP area code starts with 0.
    assert to_e164("04 50 11 22 33", "US").e164 is None
    assert to_e164("04 50 11 22 33", "FR").e164 == "+33450112233"
    assert to_e164("0033 4 50 11 22 33", "US").e164 == "+33450112233"
    assert to_e164("+33 4 50 11 22 33", "US").e164 == "+33450112233"


def test_the_reason_in_a_row_with_a_country_points_at_that_country() -> None:
    error = to_e164("04 50 11 22 33", "GB", country="United Kingdom").error
    assert error == (
        '"04 50 11 22 33" is not a valid phone number in GB (the row\'s country "United '
        "Kingdom\") (valid in FR, DE, IT): check the row's country, or write it with "
        "+<country code>"
    )


def test_match_keys_use_the_same_rule() -> None:
    # One function: the key of a valid number is its E.164 form in the same region ...
    assert normalize_phone("04 50 11 22 33", "FR") == to_e164("04 50 11 22 33", "FR").e164
    # ... and a number that is not valid is never turned into another country's number
    # (the old key read "04 50 11 22 33" as +10450112233); it is compared as written.
    assert normalize_phone("04 50 11 22 33", "US") == "0450112233"
    assert phone_key("+1 (045) 011-2233", "US") == "+10450112233"
    assert phone_key("  ", "US") is None


def test_common_country_names_answer_without_loading_every_locale() -> None:
    # Every locale's names cost ~0.5 s to load, paid by each push with a country column.
    phones._country_table.cache_clear()
    phones._common_country_table.cache_clear()
    assert region_of_country("United States") == "US"
    assert region_of_country("fra") == "FR"
    assert phones._country_table.cache_info().currsize == 0
    assert region_of_country("Deutschland") == "DE"  # not English: the full table
    assert phones._country_table.cache_info().currsize == 1


def test_the_common_table_answers_like_the_full_one() -> None:
    full = phones._country_table()
    assert all(region_of_country(key) == code for key, code in full.items())
