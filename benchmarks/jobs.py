"""Benchmark jobs, each run in a child process: ``python -m benchmarks.jobs NAME JSON_PARAMS``.

A job prints one JSON object as its last stdout line; the parent measures its wall time and
peak RSS from outside (see :mod:`benchmarks.harness`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipelines.contact import API_BASE_PATH


def job_extract(base_url: str, api_key: str, max_concurrency: int = 8) -> dict:
    """Extraction alone: every page through our client's concurrent paginator, no loading."""
    from pipelines.client import LynkistClient

    rows = 0
    started = time.perf_counter()
    with LynkistClient(base_url, api_key, max_concurrency=max_concurrency) as client:
        pages = 0
        for page in client.iter_contact_pages(limit=100):
            rows += len(page.data)
            pages += 1
        requests = client.stats.requests
    return {
        "rows": rows,
        "pages": pages,
        "requests": requests,
        "extract_s": time.perf_counter() - started,
    }


def job_rest_api(base_url: str, api_key: str, duckdb_path: str) -> dict:
    """The baseline a user would pick instead: dlt's generic ``rest_api`` source."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": base_url + API_BASE_PATH.rsplit("/", 1)[0] + "/",
                "auth": {"type": "bearer", "token": api_key},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": "pagination.total_pages",
                },
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge",
                "endpoint": {"params": {"limit": 100}, "data_selector": "data"},
            },
            "resources": [{"name": "contacts", "endpoint": {"path": "contacts"}}],
        }
    )
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench_rest_api",
        destination=dlt.destinations.duckdb(duckdb_path),
        dataset_name="lynkist",
        pipelines_dir=str(Path(duckdb_path).parent / ".rest_api_pipelines"),
    )
    pipeline.run(source)
    elapsed = time.perf_counter() - started
    with pipeline.sql_client() as client:
        result = client.execute_sql("SELECT count(*) FROM contacts")
    rows = result[0][0] if result else 0
    return {"rows": rows, "run_s": elapsed}


def job_page_capacity(base_url: str, api_key: str, pages: int, concurrency: int = 8) -> dict:
    """Raw capacity of the sandbox: page requests/s with no client logic in the way."""
    from concurrent.futures import ThreadPoolExecutor

    url = base_url + API_BASE_PATH
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(headers=headers, limits=limits, timeout=30) as http:

        def fetch(page: int) -> int:
            response = http.get(url, params={"page": page, "limit": 100})
            response.raise_for_status()
            return len(response.json()["data"])

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            rows = sum(pool.map(fetch, range(1, pages + 1)))
        elapsed = time.perf_counter() - started
    return {"pages": pages, "rows": rows, "pages_per_s": pages / elapsed}


def job_floor(base_url: str, api_key: str, pages: int, concurrency: int = 8) -> dict:
    """The wire floor: pages 1..N, ``concurrency`` in flight, bodies read and not parsed.

    The least any client can take for the listing: a minimal asyncio fetcher that knows the
    page count and does nothing with the bytes.
    """

    async def fetch_all() -> tuple[float, int]:
        url = base_url + API_BASE_PATH
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        slots = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as http:

            async def fetch(page: int) -> int:
                async with slots:
                    response = await http.get(url, params={"page": page, "limit": 100})
                    response.raise_for_status()
                    return len(response.content)

            started = time.perf_counter()
            sizes = await asyncio.gather(*(fetch(p) for p in range(1, pages + 1)))
            return time.perf_counter() - started, sum(sizes)

    elapsed, size = asyncio.run(fetch_all())
    return {"pages": pages, "fetch_s": elapsed, "bytes": size}


def job_tuned_dlt(base_url: str, api_key: str, duckdb_path: str, concurrency: int = 8) -> dict:
    """What a strong dlt user writes: page numbers fanned out to a parallelized transformer.

    ``concurrency`` pages in flight (dlt's extract workers), dlt's ``RESTClient``, merge on
    ``id``, ``tags`` and ``custom_fields`` as JSON columns (no child tables).
    """
    os.environ["EXTRACT__WORKERS"] = str(concurrency)
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth

    started = time.perf_counter()
    client = RESTClient(
        base_url=base_url + API_BASE_PATH.rsplit("/", 1)[0], auth=BearerTokenAuth(api_key)
    )
    first: dict[int, Any] = {}

    def fetch(page: int) -> Any:
        response = client.get("/contacts", params={"page": page, "limit": 100})
        response.raise_for_status()
        return response.json()

    @dlt.resource(name="page_numbers", selected=False)
    def page_numbers() -> Any:
        first[1] = fetch(1)  # page 1 tells the page count; its rows are not fetched twice
        yield from range(1, int(first[1]["pagination"]["total_pages"]) + 1)

    @dlt.transformer(
        name="contacts",
        parallelized=True,
        primary_key="id",
        write_disposition="merge",
        columns={"tags": {"data_type": "json"}, "custom_fields": {"data_type": "json"}},
    )
    def contacts(page: int) -> Any:
        body = first.pop(page) if page in first else fetch(page)
        yield body["data"]

    pipeline = dlt.pipeline(
        pipeline_name="bench_tuned_dlt",
        destination=dlt.destinations.duckdb(duckdb_path),
        dataset_name="lynkist",
        pipelines_dir=str(Path(duckdb_path).parent / ".tuned_pipelines"),
    )
    pipeline.run(page_numbers | contacts)
    elapsed = time.perf_counter() - started
    with pipeline.sql_client() as sql:
        result = sql.execute_sql("SELECT count(*) FROM contacts")
    return {"rows": result[0][0] if result else 0, "run_s": elapsed}


def job_naive_push(base_url: str, api_key: str, csv_path: str, limit: int | None = None) -> dict:
    """The hand-written script: one POST or PATCH per row, one at a time.

    Its fixed costs (imports, reading and cleaning the whole export, listing who exists) are
    paid once, at full size; its write loop runs over the first ``limit`` rows and is timed
    alone (``write_loop_s``) so the parent can scale the loop, and only the loop, to every row.
    """
    from transforms.cleaning import clean_contacts
    from transforms.csv_io import read_export
    from transforms.mapping import apply_mapping

    rows = clean_contacts(apply_mapping(read_export(csv_path), "auto")).valid
    url = base_url + API_BASE_PATH
    headers = {"Authorization": f"Bearer {api_key}"}
    writes = failed = 0
    with httpx.Client(headers=headers, timeout=30) as http:
        existing: dict[str, str] = {}
        page = 1
        while True:  # the script's own lookup of who exists, by email
            body = http.get(url, params={"page": page, "limit": 100}).json()
            existing.update({c["email"].lower(): c["id"] for c in body["data"] if c["email"]})
            if not body["pagination"]["has_next"]:
                break
            page += 1
        fields = [c for c in rows.columns if not c.startswith("_")]
        sample = rows if limit is None else rows.head(limit)
        started = time.perf_counter()
        for record in sample[fields].to_dict("records"):
            payload = {k: v for k, v in record.items() if v is not None and v == v}
            contact_id = existing.get(str(payload.get("email", "")).lower())
            if contact_id:
                response = http.patch(f"{url}/{contact_id}", json=payload)
            else:
                response = http.post(url, json=payload)
            writes += 1
            failed += response.status_code >= 400
        loop_s = time.perf_counter() - started
    return {"write_calls": writes, "rows": len(rows), "failed": failed, "write_loop_s": loop_s}


def job_clean(rows: int, seed: int = 0) -> dict:
    """Mapping + cleaning throughput over a generated CRM export."""
    from lynkist_sandbox.exports import generate_export
    from transforms.cleaning import clean_contacts
    from transforms.mapping import apply_mapping

    frame = generate_export(rows, preset="hubspot", seed=seed)
    started = time.perf_counter()
    result = clean_contacts(apply_mapping(frame, "hubspot"))
    elapsed = time.perf_counter() - started
    return {
        "rows": rows,
        "valid": len(result.valid),
        "rejected": len(result.rejected),
        "clean_s": elapsed,
        "rows_per_s": rows / elapsed,
    }


def job_sync(base_url: str, api_key: str, duckdb_path: str, full_refresh: bool = False) -> dict:
    """Our connector: ``run_sync`` into a DuckDB file (in process; one tenant's reference RSS)."""
    from pipelines.source.runner import SyncSettings, run_sync

    started = time.perf_counter()
    summary = run_sync(
        SyncSettings(
            base_url=base_url,
            api_key=api_key,
            duckdb_path=duckdb_path,
            full_refresh=full_refresh,
        )
    )
    return {
        "run_s": time.perf_counter() - started,
        "new": summary.new,
        "rows_written": summary.rows_written,
    }


def job_sync_tenants(config: str, env: dict[str, str], max_concurrency: int | None = None) -> dict:
    """``lynkist sync --all --config CONFIG --json`` in process; tenants ok and contacts loaded."""
    import contextlib
    import io
    import os

    from pipelines.cli import main

    os.environ.update(env)
    argv = ["sync", "--all", "--config", config, "--json"]
    if max_concurrency is not None:
        argv += ["--max-concurrency", str(max_concurrency)]
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    rows = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return {
        "code": code,
        "run_s": time.perf_counter() - started,
        "ok": sum(1 for r in rows if r["status"] == "ok"),
        "new": sum(r.get("new", 0) for r in rows),
        "errors": [r["error"] for r in rows if r["error"]][:3],
    }


JOBS: dict[str, Callable[..., dict]] = {
    "sync": job_sync,
    "sync_tenants": job_sync_tenants,
    "extract": job_extract,
    "floor": job_floor,
    "rest_api": job_rest_api,
    "tuned_dlt": job_tuned_dlt,
    "page_capacity": job_page_capacity,
    "naive_push": job_naive_push,
    "clean": job_clean,
}


def main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    output: dict[str, Any] = JOBS[name](**params)
    print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
