"""The Lynkist contact object: its fields and the limits the API enforces.

One place for the rules, shared by the sandbox (which enforces them), the connector (which
pages and batches within them) and the cleaning transforms (which reject rows the API would
reject, and no more). Pure definitions: ``transforms`` imports nothing from ``pipelines``.
"""

from __future__ import annotations

from typing import Final

#: Fields a client may send on create / PATCH.
WRITABLE_FIELDS: Final = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "job_title",
    "status",
    "tags",
    "custom_fields",
)
#: Nullable writable fields (PATCH with null clears them).
NULLABLE_FIELDS: Final = ("last_name", "phone", "email", "company", "job_title", "status")
#: Every field of the contact object, in the reference's order.
CONTACT_FIELDS: Final = ("id", *WRITABLE_FIELDS, "created_at", "updated_at")

FIRST_NAME_MIN: Final = 1
FIRST_NAME_MAX: Final = 255
PHONE_MAX: Final = 20
BULK_MAX_ITEMS: Final = 100
PAGE_LIMIT_MAX: Final = 100
PAGE_LIMIT_DEFAULT: Final = 20


def normalize_email(value: str) -> str:
    """Validate an address as the API does and return its normalized form.

    Syntax only (no DNS). Special-use test domains such as ``acme.test`` are accepted, because
    the API accepts them (its own reference uses ``anurag@acme.test``).

    Args:
        value: The address as given.

    Returns:
        The normalized address (domain lower-cased, Unicode normalized).

    Raises:
        ValueError: When the address is not a valid RFC-5322 address; the message says why.
    """
    import email_validator  # on use: a sync, which never validates, skips its imports

    try:
        result = email_validator.validate_email(
            value, check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized
