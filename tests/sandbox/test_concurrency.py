"""16 parallel writers and readers for a few seconds: no write lost, nothing corrupted."""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Any

from lynkist_sandbox import SandboxServer
from tests.sandbox.conftest import api_client

DURATION_S = 3.0
WRITERS = 8
READERS = 8


def test_parallel_writers_and_readers(sb: SandboxServer) -> None:
    sb.admin.seed("acme", 300, seed=2)
    stop = time.monotonic() + DURATION_S
    expected: dict[str, dict[str, Any]] = {}  # id -> fields it must end with
    archived: set[str] = set()
    problems: list[str] = []
    lock = threading.Lock()
    counts = {"writes": 0, "reads": 0}

    def writer(n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        with api_client(sb) as http:
            i = 0
            while time.monotonic() < stop:
                i += 1
                roll = rng.random()
                if roll < 0.15:
                    items: list[dict[str, Any]] = [
                        {"first_name": f"w{n}-bulk{i}-{k}", "tags": [f"w{n}"]} for k in range(5)
                    ]
                    response = http.post("/bulk", json={"contacts": items})
                    ok = response.status_code == 201 and response.json()["created"] == 5
                    # Bulk answers carry no ids: checked by name at the end.
                    with lock:
                        for item in items:
                            expected["name:" + item["first_name"]] = item
                elif roll < 0.55 or not mine:
                    fields = {"first_name": f"w{n}-{i}", "status": "new", "tags": [f"w{n}"]}
                    response = http.post("", json=fields, headers={"Idempotency-Key": f"w{n}-{i}"})
                    ok = response.status_code == 201
                    if ok:
                        mine.append(response.json()["id"])
                        with lock:
                            expected[response.json()["id"]] = fields
                elif roll < 0.9:
                    cid = rng.choice(mine)
                    change = {"status": f"s{i}", "custom_fields": {"v": i}}
                    response = http.patch(f"/{cid}", json=change)
                    ok = response.status_code == 200 and response.json()["status"] == f"s{i}"
                    with lock:
                        expected[cid] = {**expected[cid], **change}
                else:
                    cid = mine.pop(rng.randrange(len(mine)))
                    response = http.delete(f"/{cid}")
                    ok = response.status_code == 200
                    with lock:
                        archived.add(cid)
                        expected.pop(cid)
                if not ok:
                    with lock:
                        problems.append(f"writer {n}: {response.status_code} {response.text[:200]}")
                with lock:
                    counts["writes"] += 1

    def reader(n: int) -> None:
        rng = random.Random(100 + n)
        with api_client(sb, kind="ro") as http:
            while time.monotonic() < stop:
                limit = rng.choice([1, 7, 20, 100])
                page = rng.randint(1, 6)
                if rng.random() < 0.5:
                    response = http.get("", params={"page": page, "limit": limit})
                else:
                    response = http.post(
                        "/search",
                        params={"page": page, "limit": limit},
                        json={"tag": f"w{n % WRITERS}"},
                    )
                body = response.json()
                data, pagination = body["data"], body["pagination"]
                keys = [(c["created_at"], c["id"]) for c in data]
                if (
                    response.status_code != 200
                    or len(data) > limit
                    or keys != sorted(keys, reverse=True)
                    or pagination["total_pages"] != math.ceil(pagination["total_items"] / limit)
                    or any(c["first_name"] is None for c in data)
                ):
                    with lock:
                        problems.append(f"reader {n}: {response.text[:200]}")
                if data:
                    one = http.get(f"/{data[0]['id']}")
                    if one.status_code not in (200, 404):  # 404: archived meanwhile
                        with lock:
                            problems.append(f"reader {n}: get {one.status_code}")
                with lock:
                    counts["reads"] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + 30)
    assert not any(thread.is_alive() for thread in threads)
    assert problems == []
    assert counts["writes"] > 50 and counts["reads"] > 50, counts

    truth = {c["id"]: c for c in sb.admin.contacts("acme")}
    by_name = {c["first_name"]: c for c in truth.values()}
    for key, fields in expected.items():
        contact = by_name[key[5:]] if key.startswith("name:") else truth[key]
        assert contact["archived_at"] is None
        assert {k: contact[k] for k in fields} == fields
    for cid in archived:
        assert truth[cid]["archived_at"] is not None
    assert len(truth) == 300 + len(expected) + len(archived)
    # A full scan afterwards sees exactly the live contacts, once each, in order.
    with api_client(sb) as http:
        seen: list[str] = []
        page = 1
        while True:
            body = http.get("", params={"page": page, "limit": 100}).json()
            seen += [c["id"] for c in body["data"]]
            if not body["pagination"]["has_next"]:
                break
            page += 1
    live = sorted(
        (c for c in truth.values() if c["archived_at"] is None),
        key=lambda c: (c["created_at"], c["id"]),
        reverse=True,
    )
    assert seen == [c["id"] for c in live]
