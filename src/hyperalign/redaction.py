"""Endpoint URLs: checked where they enter (flags, environment, settings files), and never shown or keyed with the
credentials a URL can carry.

One idea, one place: a secret never reaches a terminal, a log file, an error message or an HTTP answer.
- `redact_url`: a URL without its user and password (`http://***@host`) and with the value of every query (or
  fragment) parameter whose name says it is a credential (`?api-key=***`, `?key=***`, `?access_token=***`,
  libpq's `?password=***` and `?sslpassword=***`, ...); used for endpoint and database/store URLs alike;
- `redact_text`: the same for every URL inside a free text, plus what looks like a key wherever it stands
  (`sk-…`, `Bearer …`, a hyperalign API key's secret, `api_key=…`) and any secret the caller names;
- `redact_argv`: a command line with the value of every option whose name says it is a secret hidden."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from .io import check_text

HIDDEN = "***"

# A parameter or option name that says its value is a credential: key, api-key, api_key, apikey, token,
# access_token, secret, client_secret, password, sslpassword, passwd, pwd, credential(s), signature, sig, auth.
# Not plural "tokens" (--max-tokens, --tokens-per-minute are counts) and not "author".
_SECRET_NAME = re.compile(r"key|token(?!s)|secret|passw|pwd|credential|signature|^sig$|auth(?!or)", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_KEY_LIKE = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*.]{6,}"), "sk-" + HIDDEN),  # OpenAI-style keys, and their masked echoes
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-*]+", re.IGNORECASE), r"\1 " + HIDDEN),
    (re.compile(r"\b(ha-[0-9a-f]{12}-)[A-Za-z0-9_\-]+"), r"\1" + HIDDEN),  # a service key: its id is public
    (re.compile(r"""(\b[\w\-]*(?:api[_\-]?key|token|secret|passw(?:or)?d)["']?\s*[:=]\s*["']?)[^\s"',;&)}]+""",
                re.IGNORECASE), r"\1" + HIDDEN),
)


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


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or option named `name` carries a credential."""
    return bool(_SECRET_NAME.search(name.strip().lstrip("-")))


def _redact_parameters(text: str) -> str:
    """`a=1&api_key=s` -> `a=1&api_key=***` (also `;`-separated pairs)."""
    if "=" not in text:
        return text
    pieces = re.split(r"([&;])", text)
    for index in range(0, len(pieces), 2):
        name, sep, value = pieces[index].partition("=")
        if sep and value and is_secret_name(unquote_plus(name)):
            pieces[index] = f"{name}={HIDDEN}"
    return "".join(pieces)


def redact_url(url: str | None) -> str:
    """The URL without the credentials it may carry: `http://user:secret@host/v1?api-key=k&x=1` ->
    `http://***@host/v1?api-key=***&x=1`. A URL that does not parse is redacted as text."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_unparsed(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@" + netloc.rsplit("@", 1)[1]
    query, fragment = _redact_parameters(parts.query), _redact_parameters(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url  # nothing secret: exactly as given
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _redact_unparsed(url: str) -> str:
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    end = re.search(r"[/?#]", rest)
    authority, tail = (rest[:end.start()], rest[end.start():]) if end else (rest, "")
    if "@" in authority:
        authority = f"{HIDDEN}@" + authority.rsplit("@", 1)[1]
    return head + sep + authority + _redact_parameters(tail)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Free text (an error message, a traceback, a log line) with every URL redacted, anything key-like hidden and
    each of `secrets` (e.g. the configured API key) removed — with what an endpoint may echo of it (its first or
    last characters around a mask)."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, HIDDEN)
            if len(secret) >= 12:  # "Incorrect API key provided: abcd1234********wxyz"
                for piece in {secret[:8], secret[-6:]}:
                    text = re.sub(rf"\S*{re.escape(piece)}\S*", HIDDEN, text)
    text = _URL_IN_TEXT.sub(_redact_found_url, text)
    for pattern, replacement in _KEY_LIKE:
        text = pattern.sub(replacement, text)
    return text


def _redact_found_url(match: re.Match[str]) -> str:
    url = match.group().rstrip(".,;:!?)]}")  # the sentence's punctuation, not the URL's
    return redact_url(url) + match.group()[len(url):]


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line to record (a crash log): `--api-key sk-…`, `--upstream-api-key=…`, `--password x` keep their
    option and lose their value; URLs lose their credentials; a key-like word anywhere is hidden."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(HIDDEN)
            hide_next = False
            continue
        if arg.startswith("-") and arg not in ("-", "--"):
            name, eq, _ = arg.partition("=")
            if is_secret_name(name):
                shown.append(f"{name}={HIDDEN}" if eq else name)
                hide_next = not eq
                continue
        shown.append(redact_text(arg))
    return shown
