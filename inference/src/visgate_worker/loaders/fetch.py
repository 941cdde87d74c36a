"""Fetching a job's audio_url / image_url: public https only, bounded in size and time.

- Every connection is checked at dial time, on the address the socket is
  connected to (so a DNS answer that changes between lookups does not help):
  private, loopback, link-local, shared, reserved and multicast addresses are
  refused, as the orchestrator's webhook client refuses them.
- Redirects (at most MAX_REDIRECTS) are followed by hand, and only to https
  URLs, each hop checked the same way: nothing the first URL could not be.
- The whole fetch, redirects and body included, has one deadline; no
  environment proxy is used (it would be the one address checked).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlparse

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..inputs import MAX_MEDIA_BYTES, InputError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
AllowFn = Callable[[Address], bool]

MAX_REDIRECTS = 3
TOTAL_SECONDS = 60.0
READ_SECONDS = 10.0


def public_address(ip: Address) -> bool:
    """True for an address on the public Internet only."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class BlockedAddressError(OSError):
    def __init__(self, ip: str) -> None:
        super().__init__(f"refused to connect to {ip}")
        self.ip = ip


def _adapter(allow: AllowFn) -> HTTPAdapter:
    def checked(sock):  # type: ignore[no-untyped-def]
        host = str(sock.getpeername()[0]).split("%", 1)[0]
        if not allow(ipaddress.ip_address(host)):
            sock.close()
            raise BlockedAddressError(host)
        return sock

    class Plain(HTTPConnection):
        def _new_conn(self):  # type: ignore[no-untyped-def]
            return checked(super()._new_conn())

    class Secure(HTTPSConnection):
        def _new_conn(self):  # type: ignore[no-untyped-def]
            return checked(super()._new_conn())

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = Secure

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": PlainPool, "https": SecurePool}

    return Adapter(max_retries=0)


def _blocked(exc: BaseException) -> BlockedAddressError | None:
    """The BlockedAddressError somewhere in what requests raised, if any."""
    seen: list[BaseException] = [exc]
    for _ in range(12):
        if not seen:
            break
        cur = seen.pop()
        if isinstance(cur, BlockedAddressError):
            return cur
        seen.extend(e for e in (cur.__cause__, cur.__context__) if e is not None)
        seen.extend(a for a in cur.args if isinstance(a, BaseException))
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            seen.append(reason)
    return None


def fetch_url(
    url: str,
    field: str,
    *,
    allow: AllowFn = public_address,
    verify: bool | str = True,
    total: float = TOTAL_SECONDS,
    max_bytes: int = MAX_MEDIA_BYTES,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    deadline = clock() + total
    too_slow = InputError(f"{field} took longer than {total:g} s to download.")
    with requests.Session() as session:
        session.trust_env = False
        adapter = _adapter(allow)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                remaining = deadline - clock()
                if remaining <= 0:
                    raise too_slow
                wait = min(READ_SECONDS, remaining)
                with session.get(
                    url, stream=True, allow_redirects=False, timeout=(wait, wait), verify=verify
                ) as resp:
                    if resp.is_redirect:
                        url = urljoin(url, resp.headers.get("location", ""))
                        parsed = urlparse(url)
                        if parsed.scheme != "https" or not parsed.hostname:
                            raise InputError(f"{field} redirected to a URL that is not https: not followed.")
                        continue
                    if resp.status_code != 200:
                        raise InputError(f"{field} could not be fetched: HTTP {resp.status_code}.")
                    chunks, size = [], 0
                    while True:
                        # read1: what has arrived (not a full 64 KiB), so a
                        # server that drips bytes meets the deadline too.
                        chunk = resp.raw.read1(1 << 16, decode_content=True)
                        if not chunk:
                            break
                        size += len(chunk)
                        if size > max_bytes:
                            raise InputError(f"{field} is larger than {max_bytes // (1024 * 1024)} MB.")
                        if clock() > deadline:
                            raise too_slow
                        chunks.append(chunk)
                    return b"".join(chunks)
            raise InputError(f"{field} redirected more than {MAX_REDIRECTS} times.")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            blocked = _blocked(exc)
            if blocked is not None:
                raise InputError(
                    f"{field} leads to a private, loopback or link-local address ({blocked.ip}): "
                    "the worker fetches public https URLs only."
                ) from None
            if clock() >= deadline - 0.5:
                raise too_slow from None
            raise InputError(f"{field} could not be fetched ({type(exc).__name__}).") from None
