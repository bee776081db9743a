"""Sample CRM exports: a small bundled file for the demo, and generators for tests/benchmarks.

- :data:`HUBSPOT_SAMPLE` — ``hubspot_sample.csv``: 40 rows in HubSpot's "export all contacts"
  layout, including rows the cleaning step rejects (bad email, impossible phone, missing first
  name) and two rows sharing an email (rejected by the push plan).
- :func:`generate_export` — ``n`` realistic rows in a layout (HubSpot, Salesforce API names or
  report labels, Lynkist), deterministic for a seed, built column-wise from fixed pools (100k
  rows in about a second; no per-row Faker).
- :func:`export_from_contacts` — render existing contacts (dicts as the API returns them) as
  export rows, optionally changing some fields, so a push of the result is a known mix of
  updates and no-ops.
- :func:`build_push_export` — ``new`` + ``changed`` + ``unchanged`` rows in one shuffled export,
  e.g. the 5,000 / 3,000 / 2,000 benchmark.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

SAMPLES_DIR: Final = Path(__file__).resolve().parent / "samples"
HUBSPOT_SAMPLE: Final = SAMPLES_DIR / "hubspot_sample.csv"


@dataclass(frozen=True)
class Layout:
    """How a CRM lays out its export.

    Attributes:
        name: Layout name (``hubspot``, ``salesforce``, ``salesforce-report``, ``lynkist``).
        preset: The :data:`transforms.mapping.PRESETS` entry that reads it.
        columns: ``(header, source)`` pairs. A source is a Lynkist field, ``custom_fields.<key>``,
            ``custom_fields`` (JSON), ``tags`` (``;``-joined), ``status:lifecycle`` (status as a
            HubSpot label) or ``meta.<name>`` (filled by the generator: ``meta.mobile`` a
            mobile number, which the preset reads as the phone when the phone is empty;
            ``meta.created`` a creation date, which the preset ignores). Each header reads back
            through its preset as its source (``tests/test_samples.py`` checks it).
    """

    name: str
    preset: str
    columns: tuple[tuple[str, str], ...]


LAYOUTS: Final[dict[str, Layout]] = {
    "hubspot": Layout(
        "hubspot",
        "hubspot",
        (
            ("Record ID", "custom_fields.hubspot_record_id"),
            ("First Name", "first_name"),
            ("Last Name", "last_name"),
            ("Email", "email"),
            ("Phone Number", "phone"),
            ("Mobile Phone Number", "meta.mobile"),
            ("Company Name", "company"),
            ("Job Title", "job_title"),
            ("Lifecycle Stage", "status:lifecycle"),
            ("Lead Status", "custom_fields.hubspot_lead_status"),
            ("Contact owner", "custom_fields.owner"),
            ("Create Date", "meta.created"),
            ("City", "custom_fields.city"),
            ("Country/Region", "custom_fields.country"),
        ),
    ),
    "salesforce": Layout(
        "salesforce",
        "salesforce",
        (
            ("Id", "custom_fields.salesforce_id"),
            ("FirstName", "first_name"),
            ("LastName", "last_name"),
            ("Email", "email"),
            ("Phone", "phone"),
            ("MobilePhone", "meta.mobile"),
            ("Title", "job_title"),
            ("Account.Name", "company"),
            ("Department", "custom_fields.department"),
            ("LeadSource", "custom_fields.lead_source"),
            ("MailingCity", "custom_fields.city"),
            ("MailingCountry", "custom_fields.country"),
            ("CreatedDate", "meta.created"),
        ),
    ),
    "salesforce-report": Layout(
        "salesforce-report",
        "salesforce",
        (
            ("Contact ID", "custom_fields.salesforce_id"),
            ("First Name", "first_name"),
            ("Last Name", "last_name"),
            ("Title", "job_title"),
            ("Account Name", "company"),
            ("Email", "email"),
            ("Phone", "phone"),
            ("Mobile", "meta.mobile"),
            ("Lead Source", "custom_fields.lead_source"),
            ("Mailing City", "custom_fields.city"),
            ("Mailing Country", "custom_fields.country"),
            ("Created Date", "meta.created"),
        ),
    ),
    "lynkist": Layout(
        "lynkist",
        "lynkist",
        (
            ("id", "id"),
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("phone", "phone"),
            ("email", "email"),
            ("company", "company"),
            ("job_title", "job_title"),
            ("status", "status"),
            ("tags", "tags"),
            ("custom_fields", "custom_fields"),
            ("created_at", "meta.created"),
        ),
    ),
}

# --- pools ----------------------------------------------------------------------------------

FIRST_NAMES: Final = (
    "Anurag", "Lara", "James", "Mary", "Wei", "Priya", "Carlos", "Sofia", "Liam", "Olivia",
    "Noah", "Emma", "Mateo", "Zoë", "José", "Søren", "Anaïs", "Aarav", "Ananya", "Hiroshi",
    "Yuki", "Fatima", "Omar", "Chloé", "Lukas", "Mia", "Ethan", "Ava", "Lucas", "Amelia",
    "Arjun", "Isabella", "Benjamin", "Harper", "Mohammed", "Aisha", "Daniel", "Grace", "Pedro",
    "Ingrid", "Kwame", "Amara", "Dmitri", "Elena", "Tomás", "Beatriz", "Ravi", "Meera", "Jonas",
    "Freya", "Samuel", "Leah", "Kenji", "Sakura", "Ali", "Layla", "Marco", "Giulia", "Nikolai",
    "Anya", "Mary Ann", "Jean-Luc", "Björn", "Siobhán",
)  # fmt: skip
LAST_NAMES: Final = (
    "Sharma", "Croft", "Smith", "Johnson", "Chen", "Patel", "García", "Rossi", "Müller",
    "Nguyen", "Kim", "Williams", "Brown", "Jones", "Silva", "Santos", "Kowalski", "Novak",
    "Andersson", "Hansen", "O'Brien", "MacDonald", "van der Berg", "de la Cruz", "Tanaka",
    "Suzuki", "Okafor", "Mensah", "Haddad", "Khan", "Singh", "Gupta", "Iyer", "Reddy", "Lopez",
    "Martin", "Bernard", "Dubois", "Schmidt", "Fischer", "Weber", "Ivanov", "Petrov", "Costa",
    "Ferreira", "Lindqvist", "Nieminen", "Horvat", "Papadopoulos", "Yilmaz", "Cohen", "Levi",
    "Adeyemi", "Abebe", "Moreau", "Laurent", "Fontaine", "Keller", "Baker", "Clarke",
)  # fmt: skip
COMPANIES: Final = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Pied Piper", "Vandelay Industries", "Wonka Foods", "Soylent", "Tyrell Systems",
    "Cyberdyne", "Aperture Labs", "Black Mesa", "Oscorp", "Gringotts", "Monarch Solutions",
    "Northwind Traders", "Contoso", "Fabrikam", "Tailspin Toys", "Adventure Works",
    "Blue Yonder Airlines", "Litware", "Proseware", "Lamna Healthcare", "Wide World Importers",
    "Müller & Söhne GmbH", "Café Olé S.A.", "Sakura Denki K.K.", "Tata Softworks",
    "Infinity Retail", "Zenith Logistics", "Orbit Media", "Nimbus Cloud", "Quantum Bank",
    "Helios Energy", "Atlas Robotics", "Evergreen Farms",
)  # fmt: skip
JOB_TITLES: Final = (
    "Founder", "CEO", "CTO", "CFO", "VP Sales", "VP Marketing", "Head of Growth",
    "Marketing Manager", "Sales Manager", "Account Executive", "Customer Success Manager",
    "Product Manager", "Software Engineer", "Data Analyst", "Operations Manager",
    "Office Manager", "HR Business Partner", "Procurement Lead", "Designer", "Consultant",
    "Director of Partnerships", "Support Specialist", "Research Scientist", "Buyer",
)  # fmt: skip
DOMAINS: Final = (
    "acme.test", "globex.test", "initech.test", "hooli.test", "example.com", "example.org",
    "mail.test", "inbox.test", "northwind.test", "contoso.test", "fabrikam.test", "nimbus.test",
)  # fmt: skip
LIFECYCLE_LABELS: Final = (
    "Subscriber", "Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Opportunity",
    "Customer", "Evangelist", "Other", "",
)  # fmt: skip
LIFECYCLE_WEIGHTS: Final = (0.10, 0.30, 0.12, 0.08, 0.08, 0.20, 0.03, 0.02, 0.07)
LEAD_STATUSES: Final = ("New", "Open", "In Progress", "Open Deal", "Unqualified", "Connected", "")
LEAD_SOURCES: Final = ("Web", "Phone Inquiry", "Partner Referral", "Trade Show", "Word of mouth")
DEPARTMENTS: Final = ("Sales", "Marketing", "Finance", "Engineering", "Operations", "")
OWNERS: Final = ("Dana Whitfield", "Sam Ortiz", "Priya Nair", "")
PLACES: Final = (
    ("San Francisco", "United States"), ("New York", "United States"), ("Austin", "United States"),
    ("London", "United Kingdom"), ("Manchester", "United Kingdom"), ("Bengaluru", "India"),
    ("Mumbai", "India"), ("Berlin", "Germany"), ("München", "Germany"), ("", ""),
)  # fmt: skip
TAGS: Final = ("newsletter", "webinar", "trial", "vip", "partner", "event", "inbound", "churned")
LYNKIST_STATUSES: Final = ("lead", "customer", "active", "")
US_AREA_CODES: Final = (
    201, 202, 212, 213, 305, 312, 404, 415, 503, 512, 617, 646, 702, 718, 773, 808, 917, 949,
)  # fmt: skip
#: Status → HubSpot lifecycle label that maps back to it (other statuses are written as-is).
STATUS_TO_LIFECYCLE: Final = {"lead": "Lead", "customer": "Customer"}
#: Fields :func:`export_from_contacts` knows how to change (plus any ``custom_fields.<key>``).
CHANGEABLE: Final = (
    "first_name", "last_name", "phone", "email", "company", "job_title", "status", "tags",
)  # fmt: skip


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _pick(rng: np.random.Generator, pool: Sequence[Any], n: int, p: Any = None) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.choice(len(pool), size=n, p=p)]


def _text(values: Iterable[Any]) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def _phones(rng: np.random.Generator, n: int) -> pd.Series:
    """Phone numbers as people type them: US formats mostly, some international."""
    area = _pick(rng, [str(a) for a in US_AREA_CODES], n)
    exchange = pd.Series(rng.integers(200, 1000, n)).astype(str).to_numpy(dtype=object)
    line = pd.Series(rng.integers(0, 10000, n)).astype(str).str.zfill(4).to_numpy(dtype=object)
    eight = pd.Series(rng.integers(0, 10**8, n)).astype(str).str.zfill(8).to_numpy(dtype=object)
    styles = rng.choice(7, size=n, p=[0.3, 0.15, 0.15, 0.15, 0.1, 0.1, 0.05])
    forms = [
        "(" + area + ") " + exchange + "-" + line,
        area + "-" + exchange + "-" + line,
        "+1 " + area + " " + exchange + " " + line,
        area + "." + exchange + "." + line,
        # London numbers are 020 3/7/8…: other first digits are not valid UK numbers.
        "+44 20 7" + np.asarray([e[:3] for e in eight], dtype=object) + " " + line,
        "+91 9" + np.asarray([e[:4] for e in eight], dtype=object) + " " + line + "0",
        "+49 30 " + eight,
    ]
    return pd.Series(np.choose(styles, forms), dtype=object)


def _places_for(rng: np.random.Generator, phones: pd.Series) -> np.ndarray:
    """A place per row in the phone's own country, so the push reads every phone right: a
    national (US) number in a row saying "Germany" would be read — and rejected — as German."""
    by_country: dict[str, list[int]] = {}
    for i, (_, country) in enumerate(PLACES):
        by_country.setdefault(country, []).append(i)
    prefixes = {"+44": "United Kingdom", "+91": "India", "+49": "Germany", "+1": "United States"}
    place = rng.choice(len(PLACES), size=len(phones))
    pick = rng.random(len(phones))
    for row, number in enumerate(phones.tolist()):
        if not number:
            continue
        country = next(
            (c for p, c in prefixes.items() if str(number).startswith(p)), "United States"
        )
        options = by_country[country] + by_country[""]
        place[row] = options[int(pick[row] * len(options))]
    return place


def generate_export(
    n: int,
    *,
    preset: str = "hubspot",
    seed: int = 0,
    invalid: float = 0.0,
    missing_email: float = 0.05,
    missing_phone: float = 0.1,
) -> pd.DataFrame:
    """Generate a realistic CRM export.

    Args:
        n: Number of rows.
        preset: Layout name: ``hubspot``, ``salesforce`` (API names), ``salesforce-report``
            (report labels) or ``lynkist``.
        seed: Same seed, same rows. Emails embed ``seed * 10**7 + row number`` so exports generated
            with different seeds (below 10 million rows) never share an address.
        invalid: Share of rows made invalid, cycling through a bad email, an impossible phone
            and a missing first name. Their 1-based row numbers are in
            ``attrs["invalid_rows"]``.
        missing_email: Share of rows without an email.
        missing_phone: Share of rows without a phone.

    Returns:
        A DataFrame of text (``""`` for empty cells) with the layout's headers, as
        :func:`transforms.csv_io.read_export` would return it.

    Raises:
        ValueError: Unknown layout, or shares outside [0, 1].
    """
    layout = _layout(preset)
    for name, share in (
        ("invalid", invalid),
        ("missing_email", missing_email),
        ("missing_phone", missing_phone),
    ):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {share}")
    rng = np.random.default_rng(seed)
    serial = np.arange(1, n + 1, dtype=np.int64) + seed * 10**7
    first = _pick(rng, FIRST_NAMES, n)
    last = _pick(rng, LAST_NAMES, n)
    to_ascii_first = {v: _ascii(v) for v in FIRST_NAMES}
    to_ascii_last = {v: _ascii(v) for v in LAST_NAMES}
    domain = _pick(rng, DOMAINS, n)
    local = (
        pd.Series(first).map(to_ascii_first)
        + "."
        + pd.Series(last).map(to_ascii_last)
        + pd.Series(serial).astype(str)
    )
    case = rng.random(n)
    email = (local + "@" + pd.Series(domain)).astype(object)
    # Some people type their address capitalised; the push matches case-insensitively.
    email = email.where(case > 0.05, email.str.title())
    email = email.where(rng.random(n) >= missing_email, "")
    phone = _phones(rng, n).where(rng.random(n) >= missing_phone, "")
    mobile = pd.Series("", index=range(n), dtype=object)
    has_mobile = any(source == "meta.mobile" for _, source in layout.columns)
    moved = (phone != "") & (rng.random(n) < (0.08 if has_mobile else 0.0))
    mobile = mobile.where(~moved, phone)
    phone = phone.where(~moved, "")
    place = _places_for(rng, phone.where(phone != "", mobile))
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900 * 86400, n), "s")

    fields: dict[str, pd.Series] = {
        "first_name": _text(first),
        "last_name": _text(last),
        "email": email,
        "phone": phone,
        "meta.mobile": mobile,
        "company": _text(_pick(rng, COMPANIES, n)),
        "job_title": _text(_pick(rng, JOB_TITLES, n)),
        "custom_fields.city": _text(PLACES[i][0] for i in place),
        "custom_fields.country": _text(PLACES[i][1] for i in place),
        "custom_fields.hubspot_lead_status": _text(_pick(rng, LEAD_STATUSES, n)),
        "custom_fields.lead_source": _text(_pick(rng, LEAD_SOURCES, n)),
        "custom_fields.department": _text(_pick(rng, DEPARTMENTS, n)),
        "custom_fields.owner": _text(_pick(rng, OWNERS, n)),
        "meta.created": pd.Series(created.strftime("%Y-%m-%d %H:%M"), dtype=object),
    }
    if layout.name == "hubspot":
        fields["custom_fields.hubspot_record_id"] = (1_000_000 + pd.Series(serial)).astype(str)
        fields["status:lifecycle"] = _text(
            _pick(rng, LIFECYCLE_LABELS, n, p=np.asarray(LIFECYCLE_WEIGHTS))
        )
    else:
        fields["custom_fields.salesforce_id"] = _salesforce_ids(serial)
        fields["status"] = _text(_pick(rng, LYNKIST_STATUSES, n))
    if layout.name == "lynkist":
        fields["id"] = pd.Series("", index=range(n), dtype=object)
        tag_count = rng.integers(0, 4, n)
        tag_picks = rng.integers(0, len(TAGS), (n, 3))
        fields["tags"] = _text(
            ";".join(dict.fromkeys(TAGS[j] for j in tag_picks[i, : tag_count[i]])) for i in range(n)
        )
        fields["custom_fields"] = _text(
            json.dumps({"plan": p}) if p else ""
            for p in _pick(rng, ("free", "starter", "growth", "enterprise", ""), n)
        )
    frame = _render(layout, fields, n)
    invalid_rows = _spoil(frame, layout, rng, invalid)
    frame.attrs["invalid_rows"] = invalid_rows
    frame.attrs["layout"] = layout.name
    return frame


def _salesforce_ids(serial: np.ndarray) -> pd.Series:
    return pd.Series(["003" + format(int(s), "012X") + "AAA" for s in serial], dtype=object)


def _layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"unknown export layout {name!r}: use one of {', '.join(LAYOUTS)}"
        ) from None


def _render(layout: Layout, fields: Mapping[str, pd.Series], n: int) -> pd.DataFrame:
    empty = pd.Series("", index=range(n), dtype=object)
    data = {}
    for header, source in layout.columns:
        values = fields.get(source, empty)
        data[header] = values.to_numpy(dtype=object)
    return pd.DataFrame(data, dtype="str")


def _spoil(
    frame: pd.DataFrame, layout: Layout, rng: np.random.Generator, share: float
) -> list[int]:
    if share <= 0 or frame.empty:
        return []
    headers = {source: header for header, source in layout.columns}
    rows = np.flatnonzero(rng.random(len(frame)) < share)
    bad_emails = ("not-an-email", "maria@", "two@@at.test", "spaces in@acme.test")
    bad_phones = ("12ab", "+1 555", "555-01", "call me")
    for k, row in enumerate(rows.tolist()):
        label = frame.index[row]
        kind = k % 3
        if kind == 0:
            frame.at[label, headers["email"]] = bad_emails[k % 4]
        elif kind == 1:
            frame.at[label, headers["phone"]] = bad_phones[k % 4]
        else:
            frame.at[label, headers["first_name"]] = ""
    return [int(r) + 1 for r in rows]


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _different(rng: np.random.Generator, pool: Sequence[str], current: Any) -> str:
    choice = pool[int(rng.integers(len(pool)))]
    return choice if choice != current else pool[(pool.index(choice) + 1) % len(pool)]


def _changed_contact(contact: Mapping[str, Any], change: Sequence[str], rng: np.random.Generator):
    changed = dict(contact)
    custom = dict(contact.get("custom_fields") or {})
    for field in change:
        current = contact.get(field)
        if field == "first_name":
            changed[field] = _different(rng, FIRST_NAMES, current)
        elif field == "last_name":
            changed[field] = _different(rng, LAST_NAMES, current)
        elif field == "company":
            changed[field] = _different(rng, COMPANIES, current)
        elif field == "job_title":
            changed[field] = _different(rng, JOB_TITLES, current)
        elif field == "status":
            changed[field] = "lead" if current == "customer" else "customer"
        elif field == "phone":
            number = current
            while number == current:
                area = US_AREA_CODES[int(rng.integers(len(US_AREA_CODES)))]
                number = f"+1{area}{int(rng.integers(200, 1000))}{int(rng.integers(10000)):04d}"
            changed[field] = number
        elif field == "email":
            changed[field] = (
                f"changed.{current}" if current else f"changed{rng.integers(10**9)}@x.test"
            )
        elif field == "tags":
            tags = list(contact.get("tags") or [])
            changed[field] = [
                *tags,
                _different(rng, [t for t in (*TAGS, "changed") if t not in tags], None),
            ]
        elif field.startswith("custom_fields."):
            key = field.removeprefix("custom_fields.")
            custom[key] = f"{_scalar(custom.get(key))}-changed".lstrip("-")
    changed["custom_fields"] = custom
    return changed


def export_from_contacts(
    contacts: Sequence[Mapping[str, Any]],
    preset: str = "hubspot",
    *,
    change: Sequence[str] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """Render existing contacts as rows of a CRM export.

    With ``change=()`` the rows clean to exactly the contacts' values for every column the
    layout has, so a push finds them unchanged. With ``change=("job_title",)`` every row gets a
    different job title (deterministic for ``seed``), so a push updates every contact.

    Args:
        contacts: Contact dicts as the API returns them (``first_name``, ``email``, ``tags``,
            ``custom_fields``, ...).
        preset: Layout name (see :data:`LAYOUTS`).
        change: Fields to change in every row: any of :data:`CHANGEABLE` or
            ``custom_fields.<key>``; each must be a column of the layout. Changing ``email``
            breaks an email match (the row becomes a new contact).
        seed: Seed for the changed values.

    Returns:
        A DataFrame of text with the layout's headers, one row per contact, in order.

    Raises:
        ValueError: Unknown layout, or a field the layout cannot carry.
    """
    layout = _layout(preset)
    sources = {source.partition(":")[0] for _, source in layout.columns}
    for field in change:
        carried = field in sources or (
            field.startswith("custom_fields.") and "custom_fields" in sources
        )
        if field not in CHANGEABLE and not field.startswith("custom_fields."):
            raise ValueError(
                f"cannot change {field!r}: use {', '.join(CHANGEABLE)} or custom_fields.<key>"
            )
        if not carried:
            raise ValueError(f"the {layout.name} layout has no column for {field!r}")
    rng = np.random.default_rng(seed)
    rows = [_changed_contact(c, change, rng) if change else c for c in contacts]
    fields: dict[str, pd.Series] = {}
    for _, source in layout.columns:
        if source == "status:lifecycle":
            values = [
                STATUS_TO_LIFECYCLE.get(r.get("status") or "", r.get("status") or "") for r in rows
            ]
        elif source == "tags":
            values = [_tags_cell(r.get("tags")) for r in rows]
        elif source == "custom_fields":
            values = [
                json.dumps(r["custom_fields"], ensure_ascii=False) if r.get("custom_fields") else ""
                for r in rows
            ]
        elif source.startswith("custom_fields."):
            key = source.removeprefix("custom_fields.")
            values = [_scalar((r.get("custom_fields") or {}).get(key)) for r in rows]
        elif source == "meta.created":
            values = [_scalar(r.get("created_at")) for r in rows]
        elif source.startswith("meta."):
            values = [""] * len(rows)
        else:
            values = [_scalar(r.get(source)) for r in rows]
        fields[source] = _text(values)
    frame = _render(layout, fields, len(rows))
    frame.attrs["layout"] = layout.name
    return frame


def _tags_cell(tags: Any) -> str:
    items = [str(t) for t in (tags or [])]
    if any(";" in t or "," in t or t.startswith("[") for t in items):
        return json.dumps(items, ensure_ascii=False)
    return ";".join(items)


def build_push_export(
    contacts: Sequence[Mapping[str, Any]],
    *,
    new: int,
    changed: int,
    unchanged: int,
    preset: str = "hubspot",
    change: Sequence[str] = ("job_title",),
    seed: int = 0,
) -> pd.DataFrame:
    """An export mixing new, changed and unchanged rows, shuffled (deterministic for ``seed``).

    Only contacts a push can match by email are used: those with an email no other contact
    shares. Of these, the first ``changed`` are rendered with ``change`` applied, the next
    ``unchanged`` as they are; ``new`` rows are generated, each with an email no contact has.

    Args:
        contacts: Existing contacts (API dicts); at least ``changed + unchanged`` usable ones.
        new: Rows for contacts that do not exist yet.
        changed: Rows that differ from their contact.
        unchanged: Rows equal to their contact.
        preset: Layout name.
        change: Fields changed in the changed rows.
        seed: Seed for generation, changes and the shuffle.

    Returns:
        The export; ``attrs["row_kinds"]`` gives ``"new"``/``"changed"``/``"unchanged"`` per
        row and ``attrs["expected"]`` the three counts.

    Raises:
        ValueError: Not enough contacts, or as :func:`export_from_contacts`.
    """
    keys = [str(c.get("email") or "").strip().lower() for c in contacts]
    counts = Counter(keys)
    usable = [c for c, k in zip(contacts, keys, strict=True) if k and counts[k] == 1]
    if changed + unchanged > len(usable):
        raise ValueError(
            f"{changed} changed + {unchanged} unchanged rows need that many contacts with a "
            f"unique email, got {len(usable)}"
        )
    known = set(keys)
    contacts = usable
    fresh = generate_export(new + new // 10 + 10, preset=preset, seed=seed + 1, missing_email=0.0)
    email_header = next(h for h, s in _layout(preset).columns if s == "email")
    fresh = fresh[~fresh[email_header].str.lower().isin(known)].head(new)
    if len(fresh) < new:
        raise ValueError("could not generate enough new rows with unused emails")
    parts = [
        fresh,
        export_from_contacts(contacts[:changed], preset, change=change, seed=seed),
        export_from_contacts(contacts[changed : changed + unchanged], preset),
    ]
    kinds = ["new"] * new + ["changed"] * changed + ["unchanged"] * unchanged
    frame = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs = {
        "layout": preset,
        "row_kinds": [kinds[i] for i in order],
        "expected": {"new": new, "changed": changed, "unchanged": unchanged},
    }
    return frame
