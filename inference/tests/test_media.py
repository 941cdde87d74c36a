"""Hostile media: decompression bombs, other image formats, and URLs that
lead to private addresses, redirect to http, or never finish."""

from __future__ import annotations

import datetime
import io
import ipaddress
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from visgate_worker.inputs import InputError
from visgate_worker.loaders import fetch as fetch_mod
from visgate_worker.loaders.media import decode_audio, decode_image


def _flac_claiming(seconds: int, rate: int, channels: int) -> bytes:
    """One real second of silence whose STREAMINFO claims `seconds`."""
    buf = io.BytesIO()
    soundfile.write(buf, np.zeros((rate, channels), dtype=np.int16), rate, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    total = seconds * rate
    # STREAMINFO starts at byte 8; its 36-bit sample count at bit 4 of byte 21.
    value = int.from_bytes(data[21:26], "big")
    value = (value & ~((1 << 36) - 1)) | total
    data[21:26] = value.to_bytes(5, "big")
    return bytes(data)


def test_audio_longer_than_the_limit_is_refused_from_the_header():
    data = _flac_claiming(2 * 3600, 8000, 1)  # 230 MB as float32 on main
    assert soundfile.info(io.BytesIO(data)).frames == 2 * 3600 * 8000
    with pytest.raises(
        InputError, match=r"^The audio is 7200 s of 1 channels at 8000 Hz: at most 60 minutes"
    ):
        decode_audio(data, 16000)


def test_the_issues_flac_bomb_is_refused_before_decoding():
    data = _flac_claiming(2 * 3600, 48000, 8)  # 10.3 GiB as float32
    with pytest.raises(InputError, match=r"^The audio is 7200 s of 8 channels at 48000 Hz"):
        decode_audio(data, 16000)


def test_audio_within_the_limits_still_decodes():
    buf = io.BytesIO()
    soundfile.write(buf, np.zeros((16000, 2), dtype=np.int16), 16000, format="FLAC")
    assert decode_audio(buf.getvalue(), 16000).shape == (16000,)


def _png_claiming(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_a_huge_png_is_refused_from_its_header():
    with pytest.raises(InputError, match=r"^The image is 12000x12000 pixels: at most"):
        decode_image(_png_claiming(12000, 12000))


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "ICO"])
def test_only_png_jpeg_and_webp_are_decoded(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format=fmt)
    with pytest.raises(InputError, match="send PNG, JPEG or WebP"):
        decode_image(buf.getvalue())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_decode(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (1, 2, 3)).save(buf, format=fmt)
    assert decode_image(buf.getvalue()).size == (16, 8)


# --- URLs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    crt = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return d / "cert.pem", d / "key.pem"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        routes = self.server.routes  # type: ignore[attr-defined]
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        routes.get(self.path, routes["default"])(self)


@contextmanager
def _server(routes: dict, cert: tuple[Path, Path] | None = None) -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes = {"default": lambda h: h.send_error(404), **routes}  # type: ignore[attr-defined]
    server.hits = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    scheme = "http"
    if cert is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server.hits  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _ok(body: bytes):
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return send


def _redirect(to: str):
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return send


def _loopback_too(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_loopback or fetch_mod.public_address(ip)


def test_a_loopback_url_is_refused_at_dial_time():
    # A plain listener behind an https URL: the worker refuses after the TCP
    # connect, before a byte of TLS, so the server sees no request.
    with _server({"/a.wav": _ok(b"RIFF")}) as (url, hits):
        https = url.replace("http://", "https://") + "/a.wav"
        with pytest.raises(
            InputError, match=r"^audio_url leads to a private, loopback or link-local address"
        ):
            fetch_mod.fetch_url(https, "audio_url")
        assert hits == []


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_public_address(ip, public):
    assert fetch_mod.public_address(ipaddress.ip_address(ip)) is public


def test_https_is_fetched_and_https_redirects_followed(cert):
    with _server({"/a": _redirect("/b"), "/b": _ok(b"audio")}, cert) as (url, hits):
        got = fetch_mod.fetch_url(url + "/a", "audio_url", allow=_loopback_too, verify=str(cert[0]))
        assert got == b"audio"
        assert hits == ["/a", "/b"]


def test_a_redirect_to_plain_http_is_not_followed(cert):
    with _server({"/x": _ok(b"secret")}) as (plain, plain_hits):
        with (
            _server({"/a": _redirect(plain + "/x")}, cert) as (url, _),
            pytest.raises(InputError, match=r"^audio_url redirected to a URL that is not https"),
        ):
            fetch_mod.fetch_url(url + "/a", "audio_url", allow=_loopback_too, verify=str(cert[0]))
        assert plain_hits == []


def test_a_redirect_to_a_private_address_is_refused(cert):
    # Allowed for the first hop only: the second hop is checked as well.
    first: list[str] = []

    def once(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        first.append(str(ip))
        return len(first) == 1

    with _server({"/a": _redirect("/b"), "/b": _ok(b"x")}, cert) as (url, hits):
        with pytest.raises(InputError, match="loopback"):
            fetch_mod.fetch_url(url + "/a", "audio_url", allow=once, verify=str(cert[0]))
        assert hits == ["/a"]


def test_the_whole_fetch_has_one_deadline(cert):
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(1 << 20))
        h.end_headers()
        for _ in range(100):  # a byte every 0.1 s: each read is quick, the whole is not
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)

    with _server({"/slow": drip}, cert) as (url, _):
        t0 = time.monotonic()
        with pytest.raises(InputError, match=r"^audio_url took longer than 1 s to download\.$"):
            fetch_mod.fetch_url(url + "/slow", "audio_url", allow=_loopback_too, verify=str(cert[0]), total=1)
        assert time.monotonic() - t0 < 5
