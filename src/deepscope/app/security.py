"""Who may use the server and which files it may touch.

- Binding to anything but the loopback interface requires a token; with a token, every
  request needs it: ``Authorization: Bearer TOKEN`` for the API, or the session cookie that
  the login page sets (an HMAC of the token, never the token itself).
- Server-side paths are confined to the data roots: resolved (symbolic links followed)
  and required to lie inside one of them, so ``..`` and links pointing out are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from pathlib import Path

from deepscope.errors import ConfigError, InputError

COOKIE = "deepscope_session"


class OutsideDataRoots(PermissionError):
    """A path that is not inside any data root."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} makes the server reachable from other machines; give "
            "--token TOKEN (or set DEEPSCOPE_TOKEN) so that only people with it get in"
        )


def session_value(token: str) -> str:
    """The cookie value that proves a browser logged in with ``token``."""
    return hmac.new(token.encode(), b"deepscope-session", hashlib.sha256).hexdigest()


def authorised(token: str | None, header: str | None, cookie: str | None) -> bool:
    """Whether a request with this ``Authorization`` header and session cookie may pass."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() == "bearer" and _same(given.strip(), token):
        return True
    return bool(cookie) and _same(cookie, session_value(token))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of a value from a request (any characters) with ours."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def confine(path: str | os.PathLike[str], roots: list[Path]) -> Path:
    """``path`` resolved, if it lies inside one of ``roots``; relative paths are taken
    from the first root. Raises :class:`OutsideDataRoots` otherwise."""
    if not roots:
        raise OutsideDataRoots("this server has no data roots; start it with --data-root DIR")
    try:
        given = Path(path)
        resolved = (given if given.is_absolute() else roots[0] / given).resolve()
        resolved.exists()  # a name too long for the file system fails here, not later
    except (OSError, RuntimeError, ValueError, TypeError) as err:  # NUL byte, loop, too long
        reason = getattr(err, "strerror", None) or str(err)[:100]
        raise InputError(f"'{str(path)[:100]}' is not a usable path: {reason}") from None
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    raise OutsideDataRoots(f"'{path}' is outside the data roots this server may read")
