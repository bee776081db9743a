"""Request and response bodies of the public API, as pydantic models.

The request models enforce the reference's limits (``transforms.contact``); unknown fields are
rejected (``extra="forbid"``) so a misspelt field name fails loudly instead of being dropped.
The response models exist for the OpenAPI document: responses are serialized from stored JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from transforms.contact import (
    BULK_MAX_ITEMS,
    FIRST_NAME_MAX,
    FIRST_NAME_MIN,
    PHONE_MAX,
    normalize_email,
)

FirstName = Annotated[str, Field(min_length=FIRST_NAME_MIN, max_length=FIRST_NAME_MAX)]
Phone = Annotated[str, Field(max_length=PHONE_MAX)]
# ``format: email`` tells clients (and schemathesis) that the server validates the address.
Email = Annotated[
    str, AfterValidator(normalize_email), Field(json_schema_extra={"format": "email"})
]

_FORBID = ConfigDict(extra="forbid")


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where ``value`` (decoded JSON) holds text that is not Unicode, or ``None``.

    JSON can spell a lone surrogate (``"\\ud800"``); Python decodes it into a ``str`` that
    cannot be encoded, stored or echoed back.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = lone_surrogate_at(key, where) or lone_surrogate_at(item, where)
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class _Body(BaseModel):
    """A request body: unknown fields rejected, every string (keys too) valid Unicode.

    pydantic refuses a lone surrogate only in constrained strings; checked here once for all
    fields, a body with one is a 422 instead of a 500 when the text reaches SQLite.
    """

    model_config = _FORBID

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = lone_surrogate_at(data)
        if where is not None:
            raise PydanticCustomError(
                "string_unicode",
                "{where}: text is not valid Unicode (a lone surrogate such as \\ud800)",
                {"where": where.encode("utf-8", "backslashreplace").decode()},
            )
        return data


class ContactCreate(_Body):
    """Body of ``POST /contacts`` and one item of ``POST /contacts/bulk``."""

    model_config = _FORBID

    first_name: FirstName
    last_name: str | None = None
    phone: Phone | None = None
    email: Email | None = None
    company: str | None = None
    job_title: str | None = None
    status: str | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class ContactUpdate(_Body):
    """Body of ``PATCH /contacts/{id}``: only the fields sent change; null clears nullables.

    ``first_name``, ``tags`` and ``custom_fields`` are not nullable: sending null is a 422.
    """

    model_config = _FORBID

    # Not-nullable fields default to None only to mean "not sent": an explicit null fails
    # type validation (and the OpenAPI document shows them as non-nullable).
    first_name: FirstName = Field(default=None)  # type: ignore[assignment]
    last_name: str | None = None
    phone: Phone | None = None
    email: Email | None = None
    company: str | None = None
    job_title: str | None = None
    status: str | None = None
    tags: list[str] = Field(default=None)  # type: ignore[arg-type]
    custom_fields: dict[str, Any] = Field(default=None)  # type: ignore[arg-type]

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their validated values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class SearchRequest(_Body):
    """Body of ``POST /contacts/search`` (page and limit stay in the query string)."""

    model_config = _FORBID

    search_term: str | None = None
    status: str | None = None
    tag: str | None = None


class BulkRequest(BaseModel):
    """Body of ``POST /contacts/bulk``: each item is validated on its own."""

    model_config = _FORBID

    contacts: list[Any] = Field(
        max_length=BULK_MAX_ITEMS,
        json_schema_extra={"items": {"$ref": "#/components/schemas/ContactCreate"}},
    )


class Contact(BaseModel):
    """The contact object (timestamps ISO-8601 UTC with microseconds and ``Z``)."""

    id: str
    first_name: str
    last_name: str | None
    phone: str | None
    email: str | None
    company: str | None
    job_title: str | None
    status: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: str
    updated_at: str | None


class Pagination(BaseModel):
    """The ``pagination`` block of a page."""

    page: int
    limit: int
    total_items: int
    total_pages: int
    has_next: bool
    has_prev: bool


class ContactPage(BaseModel):
    """A page of ``GET /contacts`` or ``POST /contacts/search``."""

    data: list[Contact]
    pagination: Pagination


class BulkItemError(BaseModel):
    """One failed item of a bulk create."""

    index: int
    error: str


class BulkResponse(BaseModel):
    """Outcome of ``POST /contacts/bulk``."""

    total: int
    created: int
    failed: int
    errors: list[BulkItemError]


class MessageResponse(BaseModel):
    """Body of a successful ``DELETE``."""

    message: str


class ErrorResponse(BaseModel):
    """Error envelope: a message, or (422) a list of field-level errors."""

    detail: str | list[dict[str, Any]]


def describe_errors(exc: ValidationError) -> str:
    """One human-readable line for a bulk item's validation errors.

    Example: ``first_name must be at least 1 character``.
    """
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "item"
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "string_too_short":
            n = ctx.get("min_length")
            parts.append(f"{field} must be at least {n} character{'s' if n != 1 else ''}")
        elif kind == "string_too_long":
            n = ctx.get("max_length")
            parts.append(f"{field} must be at most {n} character{'s' if n != 1 else ''}")
        elif kind == "missing":
            parts.append(f"{field} is required")
        elif kind == "extra_forbidden":
            parts.append(f"{field} is not a contact field")
        elif kind == "value_error":
            parts.append(f"{field} is invalid: {ctx.get('error', err['msg'])}")
        else:
            parts.append(f"{field}: {err['msg']}")
    return "; ".join(parts)
