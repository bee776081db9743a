"""A server that redirects never gets the key echoed, and never makes us send it elsewhere.

A misconfigured proxy or a hostile server may answer with a redirect whose ``Location`` holds
the key it was sent (``?api_key=…``, in the path, percent-encoded). The connector does not
follow redirects: it stops with one line naming where it was sent — with the key masked in
that line, in dlt's trace and in every file it writes. The HTTP client's own rules are checked
with a mock transport; the commands end to end against a tiny redirecting server on loopback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from pipelines.client import LynkistClient, LynkistConfigError
from tests.cli.warm import run_commands

KEY = "lk_sandbox_SECRETredirect7f3a9c1e5b"


class _Server:
    """A loopback HTTP server recording each request's path and Authorization header."""

    def __init__(self, answer: type[BaseHTTPRequestHandler]) -> None:
        self.seen: list[tuple[str, str | None]] = []
        outer = self

        class Handler(answer):  # type: ignore[valid-type,misc]
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _record(self) -> None:
                outer.seen.append((self.path, self.headers.get("Authorization")))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Elsewhere(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._record()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET


def _redirector(target: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._record()  # type: ignore[attr-defined]
            key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            location = f"{target}/steal/{key}?api_key={key}&k={quote(key + '/x', safe='')}"
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

    return Redirect


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    with _Server(_Elsewhere) as elsewhere, _Server(_redirector(elsewhere.url)) as redirector:
        yield redirector, elsewhere


def test_redact_url_masks_the_key_in_every_part() -> None:
    from pipelines.client.redaction import redact_url

    url = (
        f"https://user:{KEY}@evil.test/steal/{KEY}?api_key={KEY}&token=abc&"
        f"k={quote(KEY + '/x', safe='')}&page=2"
    )
    shown = redact_url(url, [KEY])
    assert KEY not in shown and quote(KEY, safe="") not in shown
    assert "token=***" in shown and "page=2" in shown and "evil.test" in shown
    assert redact_url("https://api.lynkist.io/api/v1/public/contacts?page=2", [KEY]) == (
        "https://api.lynkist.io/api/v1/public/contacts?page=2"
    )


def test_client_never_follows_a_redirect_and_masks_its_location() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            307, headers={"Location": f"https://elsewhere.test/x?api_key={KEY}&to={KEY}"}
        )

    client = LynkistClient("https://api.test", KEY, transport=httpx.MockTransport(handler))
    with client, pytest.raises(LynkistConfigError) as caught:
        client.list_contacts()
    assert len(sent) == 1  # not followed: the other origin never sees a request
    assert "user:***@" in repr(LynkistClient(f"https://user:{KEY}@api.test", KEY))
    assert "redirected (HTTP 307) to https://elsewhere.test/x?api_key=***" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)


def test_httpx_drops_authorization_on_a_cross_origin_redirect() -> None:
    """Should the client ever follow redirects, httpx keeps the key on the same origin only."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        if request.url.host == "api.test" and request.url.path == "/a":
            return httpx.Response(302, headers={"Location": "https://api.test/b"})
        if request.url.host == "api.test":
            return httpx.Response(302, headers={"Location": "https://elsewhere.test/c"})
        return httpx.Response(200)

    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True) as http:
        http.get("https://api.test/a", headers=auth)
    assert seen == [
        ("api.test", f"Bearer {KEY}"),
        ("api.test", f"Bearer {KEY}"),
        ("elsewhere.test", None),
    ]


def test_commands_against_a_redirecting_server_never_show_or_store_the_key(
    servers: tuple[_Server, _Server], tmp_path: Path
) -> None:
    redirector, elsewhere = servers
    export = tmp_path / "export.csv"
    export.write_text("First Name,Email\nAda,ada@redirect.test\n", encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKIST_", "SOURCES__"))}
    env = {**base, "RUNTIME__LOG_LEVEL": "DEBUG", "LYNKIST_API_KEY": KEY}
    requests = []
    for name, argv in {
        "sync": ["sync", "--base-url", redirector.url, "--duckdb", "w.duckdb"],
        "push": ["push", str(export), "--base-url", redirector.url, "--duckdb", "w.duckdb"],
        "push-no-refresh-dry": ["push", str(export), "--dry-run", "--base-url", redirector.url],
    }.items():
        cwd = tmp_path / name
        cwd.mkdir()
        requests.append(
            {
                "id": name,
                "argv": argv,
                "env": env,
                "cwd": str(cwd),
                "stdout": str(cwd / "stdout"),
                "stderr": str(cwd / "stderr"),
            }
        )
    codes = run_commands(requests)

    assert codes == {"sync": 2, "push": 2, "push-no-refresh-dry": 2}
    assert redirector.seen and all(auth == f"Bearer {KEY}" for _, auth in redirector.seen)
    assert elsewhere.seen == []  # never followed, so the key never went anywhere else
    for name in codes:
        err = (tmp_path / name / "stderr").read_text()
        assert "was redirected (HTTP 302)" in err, err
        assert f"{elsewhere.url}/steal/***" in err
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert KEY.encode() not in data, f"the key in {path}"
