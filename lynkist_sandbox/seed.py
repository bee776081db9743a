"""Realistic, deterministic demo contacts for the sandbox, fast enough for 100k at start-up.

Faker is slow per call, so it is used only once per process to build small pools (names per
locale, companies, job titles; Faker seeded with a fixed value so pools never vary); each contact
is then assembled from the pools with ``random.Random(seed)``. Same ``seed`` and ``now`` → the
same contacts, byte for byte (for a given Faker version).

What the data looks like:

* names from 10 locales, with the matching country's phone number in E.164 (+1, +44, +49, +33,
  +34, +39, +91, +55, +31, +52, +61): the country's example numbers from ``phonenumbers`` with
  the last six digits varied, keeping only variants ``phonenumbers`` calls valid (same length, so
  every number is also *possible*); about 15 % have no phone;
* lower-case ASCII e-mails, unique within one call, at ``.test``/``example.*`` domains (reserved,
  never deliverable), valid per :func:`transforms.contact.normalize_email`; about 12 % have none;
* company (80 %), job title (75 %), status ``active``/``lead``/``customer``/``None``, 0-4 tags,
  a ``custom_fields`` object (sometimes empty);
* ``created_at`` spread over the two years before ``now``; ``updated_at`` after it (and not after
  ``now``) for ``updated_share`` of the contacts, else ``None`` (never updated). Timestamps are
  ISO-8601 UTC with microseconds and ``Z``, e.g. ``2026-05-12T08:00:00.123456Z``.

The list comes back oldest first (by ``created_at``), the order a real tenant would have filled in.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import phonenumbers

#: (Faker locale, phone region, weight). Regions without their own Faker names reuse en_US.
_LOCALES: Final = (
    ("en_US", "US", 26),
    ("en_GB", "GB", 10),
    ("de_DE", "DE", 9),
    ("fr_FR", "FR", 8),
    ("es_ES", "ES", 6),
    ("it_IT", "IT", 5),
    ("en_IN", "IN", 12),
    ("pt_BR", "BR", 8),
    ("nl_NL", "NL", 4),
    ("es_MX", "MX", 5),
    ("en_US", "AU", 4),
    ("en_US", "CA", 3),
)
_POOL_SEED: Final = 20240601
_NAMES_PER_LOCALE: Final = 300
_COMPANIES: Final = 600
_JOB_TITLES: Final = 300
#: Digits varied at the end of each example number; same length keeps the number possible.
_VARIED_DIGITS: Final = 4
_PHONE_SUFFIXES: Final = 10**_VARIED_DIGITS
_MAX_TAGS: Final = 4
# Version 4 and RFC 4122 variant bits, as uuid.UUID(int=..., version=4) sets them.
_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (0x4000 << 64) | (0x8000 << 48)
_CREATED_SPAN: Final = timedelta(days=730)
_EPOCH: Final = datetime(1970, 1, 1)

_STATUSES: Final = ("active",) * 4 + ("lead",) * 3 + ("customer",) * 2 + (None,)
_TAGS: Final = (
    "vip",
    "newsletter",
    "trial",
    "enterprise",
    "smb",
    "partner",
    "churn-risk",
    "webinar-2025",
    "referral",
    "beta",
    "inbound",
    "outbound",
    "event",
    "priority",
)
_PLANS: Final = ("free", "starter", "growth", "pro", "enterprise")
_SOURCES: Final = ("website", "referral", "event", "import", "ads", "partner", "api")
_LANGUAGES: Final = ("en", "de", "fr", "es", "it", "hi", "pt", "nl")
_FREE_MAIL: Final = ("example.com", "example.org", "example.net", "mail.test", "inbox.test")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")
T = TypeVar("T")


@dataclass(frozen=True)
class _Pools:
    first_names: tuple[tuple[str, ...], ...]  # per entry of _LOCALES
    last_names: tuple[tuple[str, ...], ...]
    phone_templates: tuple[tuple[str, ...], ...]  # E.164 prefixes (without varied digits)
    locale_index: tuple[int, ...]  # weighted: pick one entry of this per contact
    companies: tuple[tuple[str, str], ...]  # (name, e-mail domain)
    job_titles: tuple[str, ...]
    slugs: dict[str, str]  # name -> ASCII e-mail local part
    tag_sets: tuple[tuple[tuple[str, ...], ...], ...]  # [k] -> every sorted k-subset of _TAGS


def _ascii_slug(text: str, sep: str = "") -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _NON_ALNUM.sub(sep, folded).strip(sep)


def _phone_templates(region: str) -> tuple[str, ...]:
    """E.164 prefixes for ``region``; appending any ``_VARIED_DIGITS`` digits gives a number.

    Besides the trailing digits, the two digits before them are varied too (keeping only
    prefixes that still give valid numbers), so phones rarely repeat even in 100k contacts.
    """
    templates: list[str] = []
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        stem = e164[: -_VARIED_DIGITS - 2]
        for middle in range(100):
            prefix = f"{stem}{middle:02d}"
            probes = (phonenumbers.parse(f"{prefix}{d:0{_VARIED_DIGITS}d}") for d in (0, 9999))
            if prefix not in templates and all(phonenumbers.is_valid_number(p) for p in probes):
                templates.append(prefix)
    if not templates:
        raise RuntimeError(f"no usable example phone number for region {region}")
    return tuple(templates)


@functools.lru_cache(maxsize=1)
def _pools() -> _Pools:
    from faker import Faker  # imported lazily: ~0.3 s, only needed when seeding

    fakers: dict[str, Any] = {}
    first, last = [], []
    for locale, _region, _weight in _LOCALES:
        if locale not in fakers:
            fake = Faker(locale)
            fake.seed_instance(_POOL_SEED)
            fakers[locale] = (
                tuple(sorted({fake.first_name() for _ in range(_NAMES_PER_LOCALE)})),
                tuple(sorted({fake.last_name() for _ in range(_NAMES_PER_LOCALE)})),
            )
        first.append(fakers[locale][0])
        last.append(fakers[locale][1])
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL"])
    fake.seed_instance(_POOL_SEED)
    companies: dict[str, str] = {}
    while len(companies) < _COMPANIES:
        name = fake.company()
        slug = _ascii_slug(name.split(",")[0])[:24] or "company"
        companies.setdefault(name, f"{slug}.test")
    titles = tuple(sorted({fake["en_US"].job() for _ in range(_JOB_TITLES)}))
    names = {name for pool in (*first, *last) for name in pool}
    return _Pools(
        first_names=tuple(first),
        last_names=tuple(last),
        phone_templates=tuple(_phone_templates(region) for _l, region, _w in _LOCALES),
        locale_index=tuple(i for i, (_l, _r, weight) in enumerate(_LOCALES) for _ in range(weight)),
        companies=tuple(sorted(companies.items())),
        job_titles=titles,
        slugs={name: _ascii_slug(name, ".") for name in names},
        tag_sets=tuple(
            tuple(itertools.combinations(sorted(_TAGS), k)) for k in range(_MAX_TAGS + 1)
        ),
    )


def _iso(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds") + "Z"


def _uuid4(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, without building the object in the hot loop."""
    bits = (bits & _UUID_CLEAR) | _UUID_SET
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_contacts(
    n: int, *, seed: int = 0, updated_share: float = 0.6, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Generate ``n`` realistic contacts (full contact objects, as the API returns them).

    Args:
        n: How many contacts (≥ 0).
        seed: Seeds every random choice; same seed and ``now`` → identical output.
        updated_share: Share of contacts with an ``updated_at`` (the rest were never updated).
        now: The newest possible timestamp (aware, or naive meaning UTC). Default: the start of
            the current UTC day, so output stays identical all day and never lies in the future.

    Returns:
        Contact dicts with every field of :data:`transforms.contact.CONTACT_FIELDS`, oldest first.

    Raises:
        ValueError: When ``n`` < 0 or ``updated_share`` is outside [0, 1].
    """
    if n < 0:
        raise ValueError(f"n must be ≥ 0, got {n}")
    if not 0.0 <= updated_share <= 1.0:
        raise ValueError(f"updated_share must be between 0 and 1, got {updated_share}")
    if now is None:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now_us = (now.astimezone(UTC).replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)
    span_us = _CREATED_SPAN // timedelta(microseconds=1)

    pools = _pools()
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange

    def pick(seq: Sequence[T]) -> T:
        # Several times cheaper than rng.choice; still one deterministic draw per pick.
        return seq[int(rand() * len(seq))]

    slugs, tag_sets = pools.slugs, pools.tag_sets
    companies, titles = pools.companies, pools.job_titles
    emails_seen: set[str] = set()
    rows: list[tuple[int, dict[str, Any]]] = []
    for i in range(n):
        loc = pick(pools.locale_index)
        first_name = pick(pools.first_names[loc])
        last_name = pick(pools.last_names[loc]) if rand() < 0.93 else None
        company_entry = pick(companies) if rand() < 0.8 else None

        phone = None
        if rand() < 0.85:
            suffix = str(randrange(_PHONE_SUFFIXES)).zfill(_VARIED_DIGITS)
            phone = f"{pick(pools.phone_templates[loc])}{suffix}"

        email = None
        if rand() < 0.88:
            local = slugs[first_name] or "contact"
            if last_name is not None and rand() < 0.8:
                local = f"{local}.{slugs[last_name] or 'x'}"
            domain = company_entry[1] if company_entry and rand() < 0.7 else pick(_FREE_MAIL)
            email = f"{local}@{domain}"
            if email in emails_seen:
                email = f"{local}{i}@{domain}"
            emails_seen.add(email)

        tags = list(pick(tag_sets[min(_MAX_TAGS, int(rand() * 3.2) + (rand() < 0.2))]))
        custom: dict[str, Any] = {}
        if rand() < 0.7:
            custom["plan"] = pick(_PLANS)
        if rand() < 0.5:
            custom["source"] = pick(_SOURCES)
        if rand() < 0.3:
            custom["seats"] = randrange(1, 500)
        if rand() < 0.2:
            custom["language"] = pick(_LANGUAGES)
        if rand() < 0.15:
            custom["newsletter_opt_in"] = rand() < 0.5

        created_us = now_us - span_us + randrange(span_us)
        updated_at = None
        if rand() < updated_share:
            updated_us = created_us + 1 + randrange(max(1, now_us - created_us))
            updated_at = _iso(min(updated_us, now_us))
        contact = {
            "id": _uuid4(rng.getrandbits(128)),
            "first_name": first_name,
            "last_name": last_name,
            "phone": phone,
            "email": email,
            "company": company_entry[0] if company_entry else None,
            "job_title": pick(titles) if rand() < 0.75 else None,
            "status": pick(_STATUSES),
            "tags": tags,
            "custom_fields": custom,
            "created_at": _iso(created_us),
            "updated_at": updated_at,
        }
        rows.append((created_us, contact))
    rows.sort(key=lambda row: row[0])
    return [contact for _created, contact in rows]
