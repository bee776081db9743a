"""Execute a push plan: bulk or single creates, concurrent PATCHes, reconciliation of unknown
outcomes.

Creates go one of two ways, whichever takes fewer requests (:func:`pipelines.sink.cost.create_way`):
in bulk (``POST /contacts/bulk``, ≤ 100 rows a call, ids learned afterwards), or one keyed
``POST /contacts`` per row (a few rows into a large tenant: each answer carries the new
contact). A single create is sent with an ``Idempotency-Key`` fixed for its row for the whole
push: the client resends it after a lost answer (the server replays the first answer), so its
outcome is never unknown the way a bulk call's is, and a row still in doubt when the push stops
is resent with the same key by the next push.

Rounds: the first round sends every create (batch or single) and every
PATCH through :meth:`LynkistClient.map_concurrent` (bounded, adaptive to 429s). A bulk call whose
answer was lost after sending (:class:`OutcomeUnknownError`) is never resent as is: its rows are
looked up (:mod:`pipelines.sink.reconcile`) and only those that do not exist go into the next
round, with rows that provably were not processed (429 or connect failure after the client's
retry budget) and PATCHes that failed transiently. After ``max_rounds`` what is left is recorded
as failed — never guessed — and the next push re-plans it from the refreshed mirror.

Per-row outcomes: a per-item bulk error, a 404 (archived meanwhile) or 422 on PATCH is that
row's outcome, not the run's end. A 401/403 (bad key, read-only key) stops the run.

In-flight journal: every bulk call is recorded before it is sent and resolved only once its
outcome is known — its answer, or the lookup of its rows. A round's single creates are recorded
together, each with its key, before the first is sent; the record is replaced at the end of the
round by one of only the rows still in doubt (or dropped when none is). An interruption (Ctrl-C,
SIGTERM) stops sending at once and leaves every unresolved call recorded for the next push to
settle.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.client import (
    AuthenticationError,
    BulkResult,
    ConflictError,
    LynkistAPIError,
    LynkistClient,
    LynkistError,
    LynkistTransportError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from pipelines.sink.cost import create_way
from pipelines.sink.journal import InflightJournal
from pipelines.sink.plan import Plan, PlannedRow
from pipelines.sink.reconcile import find_existing_contacts
from transforms.contact import BULK_MAX_ITEMS

log = logging.getLogger(__name__)

#: Status recorded for a row the bulk call rejected individually (the call itself was a 201).
ITEM_ERROR_STATUS = 422


@dataclass
class RowResult:
    """The outcome of one input row.

    Attributes:
        row_number: 1-based input row.
        match_key: Normalized match-key value.
        action: Planned action (create, update, unchanged, reject).
        outcome: created, updated, unchanged, rejected or failed.
        http_status: Status of the call that decided the outcome (None without a call).
        error: Why the row was rejected or failed.
        contact_id: The contact written or matched (filled for created rows once looked up).
        contact: The whole contact as the API last returned it (a PATCH answer, a created
            row's look-up), to merge into the mirror; not part of the results table.
    """

    row_number: int
    match_key: str | None
    action: str
    outcome: str
    http_status: int | None = None
    error: str | None = None
    contact_id: str | None = None
    contact: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass
class ExecuteStats:
    """Counters of one execution.

    Attributes:
        bulk_calls: ``POST /contacts/bulk`` calls made (attempts the client retried count once).
        single_calls: Keyed ``POST /contacts`` calls made (retries of one count once).
        create_way: ``bulk`` or ``single`` (:func:`pipelines.sink.cost.create_way`).
        patch_calls: ``PATCH`` calls made.
        unknown_batches: Bulk calls whose outcome was unknown.
        reconciled_found: Rows of those calls found created by the lookup.
        resent: Rows sent again after being confirmed absent (or provably not processed).
        rounds: Rounds run.
    """

    bulk_calls: int = 0
    single_calls: int = 0
    create_way: str = "bulk"
    patch_calls: int = 0
    unknown_batches: int = 0
    reconciled_found: int = 0
    resent: int = 0
    rounds: int = 0


@dataclass
class Execution:
    """Results of :func:`execute_plan`: one :class:`RowResult` per input row, in row order."""

    results: list[RowResult]
    stats: ExecuteStats
    fatal: str | None = None
    unavailable: str | None = None


class _Round:
    """Outcome buckets of one round."""

    def __init__(self) -> None:
        self.unknown: list[PlannedRow] = []
        self.unknown_calls: list[str] = []
        self.unknown_timeouts = False
        self.retry_creates: list[tuple[PlannedRow, LynkistError]] = []
        self.retry_updates: list[tuple[PlannedRow, LynkistError]] = []


@dataclass
class _Executor:
    client: LynkistClient
    plan: Plan
    default_region: str | None
    max_rounds: int
    settle_s: float
    journal: InflightJournal | None
    progress: Callable[[int], None] | None
    tenant_size: int | None = None
    results: dict[int, RowResult] = field(default_factory=dict)
    # The Idempotency-Key of each single-create row, fixed for the whole push.
    keys: dict[int, str] = field(default_factory=dict)
    # Single creates sent whose outcome is not known yet (resendable with their key).
    doubtful: set[int] = field(default_factory=set)
    # The journal record of the single creates that may be in flight.
    single_call: str | None = None
    stats: ExecuteStats = field(default_factory=ExecuteStats)
    fatal: str | None = None
    # Set when a write failed after its whole retry budget (429, 5xx, no answer): the API is
    # down or throttling hard, so the rest is not sent — retrying each row for rounds would
    # take hours on a large export. The next push sends those rows.
    unavailable: str | None = None

    @property
    def _stopped(self) -> str | None:
        return self.fatal or self.unavailable

    # -- recording ---------------------------------------------------------------------------

    @property
    def _created(self) -> int:
        return sum(1 for result in self.results.values() if result.outcome == "created")

    def _record(self, row: PlannedRow, outcome: str, **kwargs: Any) -> None:
        self.results[row.row_number] = RowResult(
            row.row_number, row.match_key, row.action, outcome, **kwargs
        )
        if self.progress is not None:
            self.progress(1)

    def _fail(self, row: PlannedRow, error: BaseException | str, status: int | None = None) -> None:
        if isinstance(error, LynkistAPIError) and status is None:
            status = error.status
        self._record(row, "failed", http_status=status, error=str(error))

    # -- tasks (run in worker threads) --------------------------------------------------------

    def _begin(self, rows: list[PlannedRow]) -> str | None:
        if self.journal is None:
            return None
        return self.journal.begin(
            self.plan.match_on.label, [(row.match_key, row.payload) for row in rows]
        )

    def _resolve(self, call_ids: list[str | None] | list[str]) -> None:
        if self.journal is not None:
            self.journal.resolve(call_id for call_id in call_ids if call_id is not None)

    def _bulk(self, rows: list[PlannedRow]) -> list[tuple[list[PlannedRow], Any, str | None]]:
        """Send one batch; split it on a whole-batch 422 (nothing was written) to isolate rows."""
        if self._stopped:
            return [(rows, None, None)]
        call_id = self._begin(rows)
        try:
            result: Any = self.client.bulk_create([row.payload for row in rows])
        except ValidationError as exc:
            self._resolve([call_id])  # a whole-batch 422: nothing was written
            if len(rows) == 1:
                return [(rows, exc, None)]
            middle = len(rows) // 2
            return self._bulk(rows[:middle]) + self._bulk(rows[middle:])
        except Exception as exc:
            result = exc
        return [(rows, result, call_id)]

    def _single(self, row: PlannedRow) -> Any:
        if self._stopped:
            return None
        key = self.keys[row.row_number]
        return self.client.create_contact(row.payload, idempotency_key=key)

    def _patch(self, row: PlannedRow) -> Any:
        if self._stopped:
            return None
        assert row.contact_id is not None
        return self.client.update_contact(row.contact_id, row.payload)

    def _run_task(self, task: tuple[str, Any]) -> Any:
        kind, payload = task
        if kind == "bulk":
            return self._bulk(payload)
        return self._single(payload) if kind == "single" else self._patch(payload)

    # -- handling answers -------------------------------------------------------------------

    def _check_fatal(self, error: BaseException) -> bool:
        if isinstance(error, AuthenticationError | PermissionDeniedError):
            self.fatal = str(error)
            return True
        return False

    def _on_bulk(
        self, rows: list[PlannedRow], result: Any, call_id: str | None, bucket: _Round
    ) -> None:
        if result is None:  # skipped after a fatal error
            for row in rows:
                self._fail(row, f"not sent: {self._stopped}")
            return
        self.stats.bulk_calls += 1
        if isinstance(result, OutcomeUnknownError | ServerError):
            # Resolved only once its rows are looked up (see _reconcile).
            if call_id is not None:
                bucket.unknown_calls.append(call_id)
        else:
            # An answer: created, rejected, or provably not processed.
            self._resolve([call_id])
        if isinstance(result, BulkResult):
            failed = result.failed_indexes
            for index, row in enumerate(rows):
                if index in failed:
                    self._fail(row, f"rejected by the API: {failed[index]}", ITEM_ERROR_STATUS)
                else:
                    self._record(row, "created", http_status=201)
        elif isinstance(result, OutcomeUnknownError):
            self.stats.unknown_batches += 1
            bucket.unknown.extend(rows)
            bucket.unknown_timeouts |= "timeout" in result.reason.lower()
            log.warning("bulk call of %d rows has an unknown outcome: %s", len(rows), result)
        elif isinstance(result, ServerError):
            # A 5xx on a non-idempotent call may have been applied: same as a lost answer.
            self.stats.unknown_batches += 1
            bucket.unknown.extend(rows)
        elif isinstance(result, RateLimitError) or (
            isinstance(result, LynkistTransportError) and not result.sent
        ):
            self.unavailable = self.unavailable or str(result)
            bucket.retry_creates.extend((row, result) for row in rows)
        elif isinstance(result, LynkistError):
            if self._check_fatal(result):
                for row in rows:
                    self._fail(row, result)
                return
            for row in rows:
                self._fail(row, result)
        else:
            raise result

    def _on_single(self, row: PlannedRow, result: Any, bucket: _Round) -> None:
        if result is None:
            self._fail(row, f"not sent: {self._stopped}")
            return
        self.stats.single_calls += 1
        if isinstance(result, dict):
            self.doubtful.discard(row.row_number)
            contact_id = str(result["id"]) if result.get("id") else None
            self._record(row, "created", http_status=201, contact_id=contact_id, contact=result)
        elif isinstance(result, RateLimitError) or (
            isinstance(result, LynkistTransportError) and not result.sent
        ):
            # Provably not processed; resent next round (with its key all the same).
            self.unavailable = self.unavailable or str(result)
            bucket.retry_creates.append((row, result))
        elif isinstance(result, ServerError | ConflictError | LynkistTransportError):
            # May have been applied (or is still being applied): only its key may resend it.
            self.unavailable = self.unavailable or str(result)
            self.doubtful.add(row.row_number)
            bucket.retry_creates.append((row, result))
        elif isinstance(result, LynkistError):
            self.doubtful.discard(row.row_number)  # a 422 stores nothing under the key
            self._check_fatal(result)
            self._fail(row, result)
        else:
            raise result

    def _journal_singles(self, rows: Sequence[PlannedRow]) -> None:
        """Replace the journal record of single creates by one of ``rows`` (none: dropped).

        The new record is durable before the old one is resolved, so a row that may be in
        flight is recorded at every instant.
        """
        if self.journal is None:
            return
        new = None
        if rows:
            new = self.journal.begin(
                self.plan.match_on.label,
                [(row.match_key, row.payload) for row in rows],
                idempotency_keys=[self.keys[row.row_number] for row in rows],
            )
        if self.single_call is not None:
            self.journal.resolve([self.single_call])
        self.single_call = new

    def _on_patch(self, row: PlannedRow, result: Any, bucket: _Round) -> None:
        if result is None:
            self._fail(row, f"not sent: {self._stopped}")
            return
        self.stats.patch_calls += 1
        if isinstance(result, dict):
            self._record(row, "updated", http_status=200, contact_id=row.contact_id, contact=result)
        elif isinstance(result, NotFoundError):
            self._record(
                row,
                "failed",
                http_status=404,
                error="the contact was archived or deleted since the mirror was refreshed",
                contact_id=row.contact_id,
            )
        elif isinstance(result, RateLimitError | ServerError | LynkistTransportError):
            self.unavailable = self.unavailable or str(result)
            bucket.retry_updates.append((row, result))
        elif isinstance(result, LynkistError):
            self._check_fatal(result)
            status = result.status if isinstance(result, LynkistAPIError) else None
            self._record(
                row, "failed", http_status=status, error=str(result), contact_id=row.contact_id
            )
        else:
            raise result

    # -- rounds -----------------------------------------------------------------------------

    def _round(self, creates: Sequence[PlannedRow], updates: Sequence[PlannedRow]) -> _Round:
        bucket = _Round()
        tasks: list[tuple[str, Any]]
        if self.stats.create_way == "single":
            for row in creates:
                self.keys.setdefault(row.row_number, uuid.uuid4().hex)
            self._journal_singles(creates)  # before any of them is sent
            tasks = [("single", row) for row in creates]
        else:
            tasks = [
                ("bulk", list(creates[i : i + BULK_MAX_ITEMS]))
                for i in range(0, len(creates), BULK_MAX_ITEMS)
            ]
        tasks += [("patch", row) for row in updates]
        for (kind, payload), result in self.client.map_concurrent(self._run_task, tasks):
            if kind == "bulk":
                if isinstance(result, Exception):
                    raise result
                for rows, answer, call_id in result:
                    self._on_bulk(rows, answer, call_id, bucket)
            elif kind == "single":
                self._on_single(payload, result, bucket)
            else:
                self._on_patch(payload, result, bucket)
        if self.stats.create_way == "single":
            # Only the rows still in doubt stay recorded (their retries are recorded anew).
            self._journal_singles([row for row in creates if row.row_number in self.doubtful])
        return bucket

    def _reconcile(self, bucket: _Round) -> list[PlannedRow]:
        """Rows of unknown-outcome calls that do not exist (safe to resend)."""
        if not bucket.unknown:
            return []
        if bucket.unknown_timeouts and self.settle_s > 0:
            # A request the client timed out on may still be running on the server; give it
            # time to finish before looking, or the lookup could miss a row about to appear.
            time.sleep(self.settle_s)
        found = find_existing_contacts(
            self.client,
            bucket.unknown,
            match_on=self.plan.match_on,
            default_region=self.default_region,
            tenant_size=None if self.tenant_size is None else self.tenant_size + self._created,
        )
        absent = []
        for row in bucket.unknown:
            contact = found.get(row.row_number)
            if contact is None:
                absent.append(row)
            else:
                self.stats.reconciled_found += 1
                # the whole contact too: the push merges it into the mirror
                self._record(row, "created", contact_id=str(contact["id"]), contact=contact)
        # Known now: each row exists or is absent (and goes into the next round's calls).
        self._resolve(bucket.unknown_calls)
        return absent

    def run(self) -> Execution:
        try:
            return self._run()
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Ctrl-C / SIGTERM: worker threads still running must not start another call;
                # the calls already sent stay in the journal for the next push to settle.
                self.fatal = self.fatal or f"interrupted ({type(exc).__name__})"
            raise

    def _run(self) -> Execution:
        for row in self.plan.rows:
            if row.action == "reject":
                self._record(row, "rejected", error=row.reason)
            elif row.action == "unchanged":
                self._record(row, "unchanged", contact_id=row.contact_id)
        creates = self.plan.by_action("create")
        updates = self.plan.by_action("update")
        self.stats.create_way = create_way(len(creates), self.tenant_size)
        last_errors: dict[int, LynkistError] = {}
        unresolved: list[PlannedRow] = []
        while (creates or updates) and self.stats.rounds < self.max_rounds and not self._stopped:
            self.stats.rounds += 1
            t0 = time.monotonic()
            bucket = self._round(creates, updates)
            log.info(
                "round %d: %d creates, %d updates sent in %.1fs; %d rows of lost bulk answers",
                self.stats.rounds,
                len(creates),
                len(updates),
                time.monotonic() - t0,
                len(bucket.unknown),
            )
            t0 = time.monotonic()
            try:
                absent = self._reconcile(bucket)
            except LynkistError as exc:
                # Without knowing what exists, resending could duplicate: stop creating.
                log.warning("could not look up rows of an unknown bulk outcome: %s", exc)
                unresolved = bucket.unknown
                absent = []
                creates = []
            else:
                creates = absent + [row for row, _ in bucket.retry_creates]
                self.stats.resent += len(creates)
                if bucket.unknown:
                    log.info(
                        "looked up %d rows in %.1fs: %d exist, %d to resend",
                        len(bucket.unknown),
                        time.monotonic() - t0,
                        len(bucket.unknown) - len(absent),
                        len(absent),
                    )
            last_errors.update({row.row_number: err for row, err in bucket.retry_creates})
            last_errors.update({row.row_number: err for row, err in bucket.retry_updates})
            updates = [row for row, _ in bucket.retry_updates]
            if unresolved:
                break
            if (creates or updates) and not self._stopped:
                # Let a throttling or failing server breathe before the next round.
                time.sleep(min(2.0, 0.2 * 2**self.stats.rounds))
        for row in unresolved:
            self._fail(
                row,
                "bulk call outcome unknown and the lookup failed; not resent to avoid a "
                "duplicate — the next push re-checks this row",
            )
        for row in [*creates, *updates]:
            if row.row_number in self.results:
                continue
            error = last_errors.get(row.row_number)
            if row.row_number in self.doubtful:
                self._fail(
                    row,
                    f"outcome unknown ({error}); the next push resends it with the same "
                    "Idempotency-Key, which cannot create it twice",
                )
            elif self.fatal:
                self._fail(row, f"not sent: {self.fatal}")
            elif error is not None:
                self._fail(row, error)
            else:
                self._fail(
                    row,
                    f"outcome still unknown after {self.stats.rounds} rounds; not resent to "
                    "avoid a duplicate — the next push re-checks this row",
                )
        ordered = [self.results[number] for number in sorted(self.results)]
        return Execution(ordered, self.stats, self.fatal, self.unavailable)


def execute_plan(
    client: LynkistClient,
    plan: Plan,
    *,
    default_region: str | None = "US",
    max_rounds: int = 5,
    settle_s: float = 0.0,
    journal: InflightJournal | None = None,
    progress: Callable[[int], None] | None = None,
    tenant_size: int | None = None,
) -> Execution:
    """Send the plan's writes and record one outcome per input row.

    Args:
        client: API client with a key that has ``contacts:write``.
        plan: The plan from :func:`pipelines.sink.plan.build_plan`.
        default_region: Region for phone numbers without a country code (lookups).
        max_rounds: Rounds of resending what is confirmed unsent before giving up on a row.
        settle_s: Wait before looking up rows of a bulk call that timed out (a server may still
            be processing it); use the client's timeout.
        journal: Records each bulk call before it is sent, until its outcome is known.
        progress: Called with the number of rows whose outcome was just decided.
        tenant_size: Live contacts before the push (the mirror's size), to choose the cheaper
            way of looking up rows after a lost bulk answer.

    Returns:
        Every row's outcome, the counters, and ``fatal`` (the message) when the key was
        rejected or lacks the write scope.
    """
    executor = _Executor(
        client, plan, default_region, max_rounds, settle_s, journal, progress, tenant_size
    )
    return executor.run()
