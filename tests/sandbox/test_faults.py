"""Fault injection: spec parsing, reproducible draws, and each fault over real HTTP (uvicorn)."""

from __future__ import annotations

import logging
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from lynkist_sandbox.faults import (
    DroppedResponseLogFilter,
    FaultInjectionMiddleware,
    FaultSpec,
    draw,
    is_write,
)
from tests.sandbox.serving import serve
from tests.waiting import wait_until

API = "/api/v1/public/contacts"


class Harness:
    """A minimal contacts-like app wrapped in the middleware, with a live spec and logs."""

    def __init__(self, spec: FaultSpec, style: str = "seconds") -> None:
        self.spec = spec
        self.style = style
        self.commits: list[dict[str, Any]] = []
        self.handled: list[str] = []
        self.faults: list[dict[str, Any]] = []
        inner = FastAPI()

        @inner.get(API)
        def list_contacts() -> dict[str, Any]:
            self.handled.append("list")
            return {"data": []}

        @inner.post(API, status_code=201)
        async def create(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.handled.append("create")
            self.commits.append(body)
            return {"id": str(len(self.commits)), **body}

        @inner.post(f"{API}/search")
        def search() -> dict[str, Any]:
            self.handled.append("search")
            return {"data": []}

        @inner.get("/health")
        def health() -> dict[str, str]:
            self.handled.append("health")
            return {"ok": "yes"}

        self.app = FaultInjectionMiddleware(
            inner,
            get_spec=lambda: self.spec,
            get_retry_after_style=lambda: self.style,
            on_fault=self.faults.append,
        )


# --- parsing -----------------------------------------------------------------------------


def test_parse_full_spec() -> None:
    spec = FaultSpec.parse("5xx=0.1,429=0.1,drop=0.02,after_commit=0.05,slow=0.05:4000,seed=7")
    assert spec == FaultSpec(
        error_5xx=0.1,
        error_429=0.1,
        drop=0.02,
        drop_after_commit=0.05,
        slow=0.05,
        slow_ms=4000,
        seed=7,
    )
    assert spec.active


def test_parse_aliases_spaces_and_separate_slow_ms() -> None:
    spec = FaultSpec.parse(" error_5xx = 0.2 , drop_after_commit=1, slow=0.5, slow_ms=10 ")
    assert (spec.error_5xx, spec.drop_after_commit, spec.slow, spec.slow_ms) == (0.2, 1, 0.5, 10)


@pytest.mark.parametrize("text", ["", "  ", "none", "OFF"])
def test_parse_empty_means_no_faults(text: str) -> None:
    spec = FaultSpec.parse(text)
    assert spec == FaultSpec()
    assert not spec.active


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("boom=0.1", "unknown fault 'boom'"),
        ("5xx", "expected KEY=VALUE"),
        ("5xx=", "expected KEY=VALUE"),
        ("5xx=lots", "bad number 'lots'"),
        ("5xx=nan", "bad number 'nan'"),
        ("5xx=0.1,5xx=0.2", "given twice"),
        ("429=1.5", "between 0 and 1"),
        ("drop=-0.1", "between 0 and 1"),
        ("5xx=0.6,429=0.6", "must not exceed 1"),
        ("slow=0.1", "slow needs a delay"),
        ("slow=0.1:abc", "bad number 'abc'"),
        ("seed=1.5", "expected an integer"),
        ("slow=0.1:-5", "slow_ms must be"),
    ],
)
def test_parse_rejects_junk_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(text)


def test_to_spec_round_trips() -> None:
    spec = FaultSpec(error_5xx=0.1, error_429=0.05, drop_after_commit=0.2, slow=0.3, slow_ms=250)
    assert FaultSpec.parse(spec.to_spec()) == spec
    assert FaultSpec().to_spec() == "none"


def test_from_mapping_rejects_unknown_fields_and_bad_values() -> None:
    assert FaultSpec.from_mapping({"drop": 0.5, "seed": 3}) == FaultSpec(drop=0.5, seed=3)
    assert FaultSpec.from_mapping({"drop": 0.5}).to_dict()["drop"] == 0.5
    with pytest.raises(ValueError, match="unknown fault field"):
        FaultSpec.from_mapping({"dropp": 0.5})
    with pytest.raises(ValueError, match="must be a number"):
        FaultSpec.from_mapping({"drop": "0.5"})


# --- draws -------------------------------------------------------------------------------


def test_draws_are_reproducible_and_shares_roughly_hold() -> None:
    spec = FaultSpec(error_5xx=0.1, error_429=0.1, drop=0.05, drop_after_commit=0.2, seed=11)

    def run() -> list[str | None]:
        rng = random.Random(spec.seed)
        return [draw(spec, rng, "POST", API).fault for _ in range(10_000)]

    first = run()
    assert first == run()
    counts = {name: first.count(name) for name in ("5xx", "429", "drop", "drop_after_commit")}
    assert 800 < counts["5xx"] < 1200
    assert 800 < counts["429"] < 1200
    assert 350 < counts["drop"] < 650
    # after_commit only applies to requests that drew no other fault: 0.2 * 0.75 of them.
    assert 1250 < counts["drop_after_commit"] < 1750


def test_each_draw_consumes_exactly_four_numbers() -> None:
    spec = FaultSpec(error_5xx=0.5, slow=0.5, slow_ms=1, seed=3)
    rng, reference = random.Random(3), random.Random(3)
    for _ in range(50):
        draw(spec, rng, "GET", API)
        for _ in range(4):
            reference.random()
    assert rng.random() == reference.random()


def test_5xx_statuses_vary_and_slow_is_independent() -> None:
    spec = FaultSpec(error_5xx=1.0, slow=0.5, slow_ms=300, seed=5)
    rng = random.Random(5)
    decisions = [draw(spec, rng, "GET", API) for _ in range(300)]
    assert {d.status for d in decisions} == {500, 502, 503}
    delays = {d.delay_s for d in decisions}
    assert delays == {0.0, 0.3}


def test_after_commit_never_applies_to_reads_or_search() -> None:
    spec = FaultSpec(drop_after_commit=1.0)
    rng = random.Random(0)
    assert draw(spec, rng, "GET", API).fault is None
    assert draw(spec, rng, "POST", f"{API}/search").fault is None
    for method, path in [("POST", API), ("POST", f"{API}/bulk"), ("PATCH", f"{API}/x")]:
        assert draw(spec, rng, method, path).fault == "drop_after_commit"
    assert is_write("delete", f"{API}/x")
    assert not is_write("POST", f"{API}/search/")


def test_log_filter_hides_only_the_dropped_response_line() -> None:
    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, msg, None, None)

    flt = DroppedResponseLogFilter()
    assert not flt.filter(record("ASGI callable returned without completing response."))
    assert flt.filter(record("Exception in ASGI application\n"))
    logger = logging.getLogger("test_faults.dedup")
    logger.addFilter(DroppedResponseLogFilter())
    logger.addFilter(DroppedResponseLogFilter())  # one per app built: installed once
    assert len(logger.filters) == 1


# --- over real HTTP ----------------------------------------------------------------------


# A closed connection reaches the client as a truncated answer, or as a reset when the close
# races the request body still being read: both are a dropped connection.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_drop_before_handler_drops_the_connection() -> None:
    h = Harness(FaultSpec(drop=1.0))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        with pytest.raises(DROPPED):
            client.post(API, json={"first_name": "Ada"})
        with pytest.raises(DROPPED):
            client.get(API)
        # The connection pool recovers: the next request on a fresh connection works.
        h.spec = FaultSpec()
        assert client.get(API).status_code == 200
    assert h.commits == []
    assert [f["fault"] for f in h.faults] == ["drop", "drop"]
    assert h.faults[0] == {"fault": "drop", "method": "POST", "path": API, "status": None}


def test_drop_after_commit_runs_the_write_then_drops() -> None:
    h = Harness(FaultSpec(drop_after_commit=1.0))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(API, json={"first_name": "Ada"})
        # Reads and POST search are never dropped after commit.
        assert client.get(API).status_code == 200
        assert client.post(f"{API}/search", json={}).status_code == 200
    assert h.commits == [{"first_name": "Ada"}]
    assert h.faults == [
        {"fault": "drop_after_commit", "method": "POST", "path": API, "status": 201}
    ]


def test_injected_5xx_and_429_never_reach_the_handler() -> None:
    h = Harness(FaultSpec(error_5xx=1.0, seed=1))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        statuses = set()
        for _ in range(20):
            response = client.post(API, json={"first_name": "Ada"})
            statuses.add(response.status_code)
            assert "injected fault" in response.json()["detail"]
        assert statuses <= {500, 502, 503} and len(statuses) > 1

        h.spec = FaultSpec(error_429=1.0)
        response = client.post(API, json={"first_name": "Ada"})
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"

        h.style = "http-date"
        before = time.time()
        response = client.get(API)
        assert response.status_code == 429
        when = parsedate_to_datetime(response.headers["retry-after"]).timestamp()
        assert before < when <= time.time() + 2

        h.style = "none"
        assert "retry-after" not in client.get(API).headers
    assert h.commits == [] and h.handled == []
    assert {f["status"] for f in h.faults[:20]} == statuses


def test_paths_outside_the_public_api_never_fault() -> None:
    h = Harness(FaultSpec(drop=0.5, error_5xx=0.5))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        for _ in range(10):
            assert client.get("/health").status_code == 200
    assert h.handled == ["health"] * 10 and h.faults == []


def test_slow_requests_are_delayed() -> None:
    h = Harness(FaultSpec(slow=1.0, slow_ms=200))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        started = time.monotonic()
        assert client.get(API).status_code == 200
        assert time.monotonic() - started >= 0.2
    assert h.faults == []  # slow alone is not a fault


def test_fault_sequence_is_reproducible_over_http_and_reseeds_on_new_spec() -> None:
    spec_text = "5xx=0.3,429=0.2,drop=0.1,after_commit=0.3,seed=42"

    def outcomes(h: Harness, client: httpx.Client) -> list[str]:
        seen = []
        for i in range(25):
            try:
                seen.append(str(client.post(API, json={"first_name": f"n{i}"}).status_code))
            except DROPPED:
                seen.append("dropped")
        return seen

    h = Harness(FaultSpec.parse(spec_text))
    with serve(h.app) as url, httpx.Client(base_url=url, timeout=5) as client:
        first = outcomes(h, client)
        h.spec = FaultSpec.parse(spec_text)  # a new object: the draws start over
        second = outcomes(h, client)
    assert first == second
    assert {"201", "429", "dropped"} <= set(first)
    assert any(s in first for s in ("500", "502", "503"))


def test_commit_delay_parses_and_round_trips() -> None:
    spec = FaultSpec.parse("commit_delay_ms=6000")
    assert spec == FaultSpec(commit_delay_ms=6000) and spec.active
    assert FaultSpec.parse(spec.to_spec()) == spec
    with pytest.raises(ValueError, match="commit_delay_ms must be a number"):
        FaultSpec(commit_delay_ms=-1)


def test_commit_delay_commits_after_the_client_has_gone() -> None:
    """The client gives up (timeout) before the delay ends: the write still commits later."""
    h = Harness(FaultSpec(commit_delay_ms=800))
    with serve(h.app) as url:
        with httpx.Client(base_url=url, timeout=0.2) as client:
            assert client.get(API).status_code == 200  # reads are not delayed
            with pytest.raises(httpx.ReadTimeout):
                client.post(API, json={"first_name": "Ada"})
        # the client and its connection are closed now; the server has not committed yet
        assert h.commits == []
        wait_until(lambda: h.commits, "the delayed commit", timeout=10)
        assert h.commits == [{"first_name": "Ada"}]
        with httpx.Client(base_url=url, timeout=5) as client:
            started = time.monotonic()
            response = client.post(API, json={"first_name": "Bob"})  # a patient client
            assert response.status_code == 201 and time.monotonic() - started >= 0.8
            assert client.post(f"{API}/search", json={}).status_code == 200
    assert h.commits[-1] == {"first_name": "Bob"}
    assert h.faults == []  # a delayed commit is not a fault of the request log
