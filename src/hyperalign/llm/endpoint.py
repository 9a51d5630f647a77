"""Endpoint URLs: checked where they enter (flags, environment, settings files), and never shown or keyed with the
credentials a URL can carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..io import check_text


def validate_base_url(url: str) -> str:
    """An http(s) URL with a host and, if given, a port in 1..65535; anything else is refused with the reason."""
    check_text(url, "the base URL")
    if not url.strip() or any(c.isspace() for c in url):
        raise ValueError(f"{redact_url(url)!r} is not a URL (it is empty or contains spaces); "
                         "expected e.g. http://localhost:8000/v1")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r} is not a valid URL ({exc}); expected e.g. http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{redact_url(url)!r} is not an http(s) URL; expected e.g. http://localhost:8000/v1")
    if not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} has no host; expected e.g. http://localhost:8000/v1")
    if port == 0:
        raise ValueError(f"{redact_url(url)!r}: port 0 is not a port a server listens on")
    return url


def redact_url(url: str | None) -> str:
    """The URL without the password (and user) it may carry: `http://user:secret@host` -> `http://***@host`."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
