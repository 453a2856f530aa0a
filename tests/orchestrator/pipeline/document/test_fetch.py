"""fetch_url against real local HTTP servers: redirects checked hop by hop, size cap, errors."""

from __future__ import annotations

import datetime
import re
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from knowledge.errors import InvalidInput
from orchestrator.errors import FetchFailed
from orchestrator.pipeline.document.fetch import MAX_REDIRECTS, fetch_url


class Routes:
    """A real server. /go?to=URL redirects (bare /go redirects to itself); /bytes?n=N&length=0|1
    sends N bytes; /status?code=N answers N; anything else is a small HTML page."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.hosts: list[str] = []
        routes = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                routes.paths.append(self.path)
                routes.hosts.append(self.headers.get("host", ""))
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/go":
                    self.send_response(302)
                    self.send_header("location", query.get("to", "/go"))  # no target: a loop
                    self.send_header("content-length", "0")
                    self.end_headers()
                elif parts.path == "/bytes":
                    self.send_response(200)
                    self.send_header("content-type", "application/octet-stream")
                    if query.get("length") == "1":
                        self.send_header("content-length", query["n"])
                    self.end_headers()  # without a length the body ends when we close
                    self.wfile.write(b"x" * int(query["n"]))
                elif parts.path == "/status":
                    self.send_response(int(query["code"]))
                    self.send_header("content-length", "0")
                    self.end_headers()
                else:
                    data = b"<html><title>Hi</title><p>hello</p></html>"
                    self.send_response(200)
                    self.send_header("content-type", "text/html; charset=utf-8")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture
def routes() -> Iterator[Routes]:
    r = Routes()
    thread = threading.Thread(
        target=r.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def get(url: str, *, max_bytes: int = 10_000, allow_private: bool = True) -> Any:
    return await fetch_url(url, max_bytes=max_bytes, timeout=10.0, allow_private=allow_private)


async def test_fetches_a_page_by_name_keeping_the_host_header(routes: Routes) -> None:
    # Sent to the checked address, but the server still sees the name it was asked for.
    got = await get(f"http://localhost:{routes.port}/page")
    assert got.content.startswith(b"<html>")
    assert got.content_type == "text/html; charset=utf-8"
    assert got.url == f"http://localhost:{routes.port}/page"
    assert routes.hosts == [f"localhost:{routes.port}"]


async def test_follows_a_redirect_chain_to_the_final_url(routes: Routes) -> None:
    final = f"{routes.url}/final"
    second = f"{routes.url}/go?to={final}"
    got = await get(f"{routes.url}/go?to={second.replace('?', '%3F').replace('=', '%3D')}")
    assert got.url == final
    assert routes.paths[-1] == "/final"
    assert len(routes.paths) == 3


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_refused_without_private_and_never_contacted(
    routes: Routes, host: str
) -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        await get(f"http://{host}:{routes.port}/page", allow_private=False)
    assert routes.paths == []


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("file:///etc/passwd", "only http"),
        ("ftp://127.0.0.1/x", "only http"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_every_redirect_target_is_checked(routes: Routes, target: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=f"Redirect from .* refused.*{why}"):
        await get(f"{routes.url}/go?to={target}")


async def test_redirect_loop_stops(routes: Routes) -> None:
    loop = f"{routes.url}/go"
    with pytest.raises(FetchFailed, match=f"more than {MAX_REDIRECTS} times") as err:
        await get(loop)
    assert not err.value.transient
    assert len(routes.paths) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("declared", ["0", "1"])
async def test_size_cap(routes: Routes, declared: str) -> None:
    ok = await get(f"{routes.url}/bytes?n=1000&length={declared}", max_bytes=1000)
    assert len(ok.content) == 1000
    with pytest.raises(InvalidInput, match=r"too large.*limit.* 999 bytes"):
        await get(f"{routes.url}/bytes?n=1000&length={declared}", max_bytes=999)


@pytest.mark.parametrize(
    ("code", "transient"), [(404, False), (403, False), (503, True), (429, True)]
)
async def test_http_errors(routes: Routes, code: int, transient: bool) -> None:
    url = f"{routes.url}/status?code={code}"
    with pytest.raises(FetchFailed, match=re.escape(f"HTTP {code} from {url}")) as err:
        await get(url)
    assert err.value.transient is transient


async def test_connection_refused_is_transient(dead_port: int) -> None:
    url = f"http://127.0.0.1:{dead_port}/doc.pdf"
    with pytest.raises(FetchFailed, match="Could not fetch") as err:
        await get(url)
    assert err.value.transient


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost that no authority signed (what a misconfigured site sends)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_routes(tmp_path: Path) -> Iterator[Routes]:
    """The same routes over HTTPS with a self-signed certificate."""
    r = Routes()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path))
    r.server.socket = context.wrap_socket(r.server.socket, server_side=True)
    thread = threading.Thread(
        target=r.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def test_an_unverifiable_certificate_fails_for_good(tls_routes: Routes) -> None:
    url = f"https://localhost:{tls_routes.port}/doc.html"
    with pytest.raises(FetchFailed, match="certificate of localhost could not be verified") as err:
        await get(url)
    # Retrying cannot fix a certificate; the job must fail at once with that message.
    assert not err.value.transient
    assert "self-signed certificate" in str(err.value)
    assert tls_routes.paths == []  # no request was sent over the unverified connection
