"""Keep secrets out of everything printed: URL passwords and known secret values.

Every value resolved through ``etl.secret`` (or revealed from a ``SecretStr``) is added to
a process-local set; :func:`mask_secrets` replaces each of them, and every password written in a URL-like
``user:password@host`` form, with ``***``. The logging patcher,
:class:`~etl_express.errors.ETLError`, the run ledger, the CLI and the dashboard run every
text through it.

URL passwords are found the way a careless user writes them, not only the way RFC 3986 allows:
a password may hold ``@``, ``:``, ``/`` or a space, and the URL may be malformed
(``postgresql//etl:pw@host``, ``postgresql:etl:pw@host``, ``etl:pw@host/db``). Everything
between the user name and the *last* ``@`` of the authority is the password; when in doubt more
is masked, never less. :func:`mask_url` shows one URL value: its password masked when it parses,
only its scheme and host when it does not.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote, urlsplit

MASK = "***"
#: shorter values are not masked on their own (masking "1" everywhere helps nobody)
MIN_SECRET_LENGTH = 4
#: how a URL that cannot be parsed is shown when not even its scheme and host are found
HIDDEN_URL = "<URL hidden: not a valid URL>"

# a scheme followed by "://" (or the common typos "//" and ":/")
_SCHEME = re.compile(r"(?<![\w+.\-])([A-Za-z][\w+.\-]*)(://|//|:/(?!/))")
# a URL-like token: user:password@host, with or without (a possibly mangled) scheme
_TOKEN = re.compile(r"\S+")
# keyword forms: libpq's "password=..." and URL query parameters (?password=...&...)
_KEYWORD = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|pass)\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,)\]}'\"]+)"
)
# a password with a space: "scheme://user:pass word@host" (the token ends before the '@')
_SPACED = re.compile(r"([A-Za-z][\w+.\-]*:?//[^\s:/@]*:)([^\n@/]{1,64}?)@(?=[\w\[])")


_lock = threading.Lock()
_known: set[str] = set()
_ordered: tuple[str, ...] = ()


def _password_span(token: str) -> tuple[int, int] | None:
    """Where the password of a URL-like ``token`` is: from after the user name's ``:`` to
    the last ``@``; ``None`` when the token holds no ``user:password@`` part."""
    at = token.rfind("@")
    if at <= 0:
        return None
    head = token[:at]
    scheme = _SCHEME.search(head)
    if scheme is not None:
        start = scheme.end()
        colon = head.find(":", start)
        # "scheme://host/path?q=a@b" has no user information: a ':' must come before any '/'
        slash = head.find("/", start)
        if colon < 0 or (0 <= slash < colon):
            return None
    else:
        # no scheme we recognise: mask from the first ':' (the user name may go with it)
        colon = head.find(":")
        if colon < 0:
            return None
    return colon + 1, at


def _mask_token(match: re.Match[str]) -> str:
    token = match.group(0)
    span = _password_span(token)
    if span is None:
        return token
    start, end = span
    if start == end:  # "user:@host": no password to hide
        return token
    return token[:start] + MASK + token[end:]


def mask_url_passwords(text: str) -> str:
    """Every URL password in ``text`` replaced by ``***`` (valid URL or not), as well as
    ``password=...`` keyword values: ``postgresql://etl:***@host/db``."""
    if not isinstance(text, str) or not text:
        return text
    if "@" in text:
        text = _SPACED.sub(_mask_spaced, text)
        text = _TOKEN.sub(_mask_token, text)
    if "=" in text:
        text = _KEYWORD.sub(lambda m: m.group(1) + MASK, text)
    return text


def _mask_spaced(match: re.Match[str]) -> str:
    password = match.group(2)
    if not any(c.isspace() for c in password) or password == MASK:
        return match.group(0)  # the token rule handles it (and may mask more)
    return match.group(1) + MASK + "@"


def url_passwords(url: str) -> list[str]:
    """The passwords written in ``url`` (or in a text holding URLs), as written and decoded."""
    found: list[str] = []
    for match in _TOKEN.finditer(url):
        span = _password_span(match.group(0))
        if span is not None:
            password = match.group(0)[span[0] : span[1]]
            found += [password, unquote(password)]
    for match in _SPACED.finditer(url):
        found.append(match.group(2))
    for match in _KEYWORD.finditer(url):
        found.append(match.group(2).strip("'\""))
    return [value for value in found if value]


def register_secret(value: str | None) -> None:
    """Remember ``value`` (and the password inside it, if it is a URL) for masking."""
    if not value or not isinstance(value, str):
        return
    _remember([value, *url_passwords(value)])


def _remember(values: list[str]) -> None:
    new = {v for v in values if len(v) >= MIN_SECRET_LENGTH and v not in _known and v != MASK}
    if not new:
        return
    global _ordered
    with _lock:
        _known.update(new)
        # longest first, so a URL is masked whole before its password is
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def forget_secrets() -> None:
    """Clear the set of known secret values (for tests)."""
    global _ordered
    with _lock:
        _known.clear()
        _ordered = ()


def known_secret_count() -> int:
    return len(_ordered)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a URL the library can use safely, in words that quote none of it;
    ``None`` when it parses."""
    text = str(url).strip()
    if re.match(r"[A-Za-z][\w+.\-]*://", text) is None:
        return "it does not start with a scheme followed by '://' (postgresql://...)"
    span = _password_span(text)
    if span is not None and "@" in text[span[0] : span[1]]:
        return "its password holds an '@' that is not percent-encoded (write it as %40)"
    try:
        netloc = urlsplit(mask_url_passwords(text)).netloc
    except ValueError:  # an unbalanced IPv6 bracket
        return "its host is malformed"
    if any(c.isspace() for c in netloc.rpartition("@")[2]):
        return "its host holds a space"
    return None


def _scheme_and_host(text: str) -> str:
    """``scheme://host`` of a URL that does not parse, or :data:`HIDDEN_URL`."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return HIDDEN_URL
    rest = text[scheme.end() :]
    at = rest.rfind("@")
    after = rest[at + 1 :] if at >= 0 else rest
    host = re.match(r"[\w.\-]+|\[[0-9A-Fa-f:.]+\]", after)
    return f"{scheme.group(1)}://{host.group(0) if host else ''}"


def mask_url(url: object) -> str:
    """One URL, safe to print: its password replaced by ``***`` when it parses, else only its
    scheme and host (``postgresql://localhost``), else :data:`HIDDEN_URL`."""
    text = str(url).strip()
    if url_problem(text) is not None:
        return _scheme_and_host(text)
    masked = mask_url_passwords(text)
    for value in _ordered:  # a known password in the query string or elsewhere
        if value in masked:
            masked = masked.replace(value, MASK)
    return masked


def mask_secrets(text: str) -> str:
    """``text`` with every known secret value and every URL password replaced by ``***``."""
    if not isinstance(text, str) or not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return mask_url_passwords(text) if ("@" in text or "=" in text) else text


__all__ = [
    "HIDDEN_URL",
    "MASK",
    "MIN_SECRET_LENGTH",
    "forget_secrets",
    "known_secret_count",
    "mask_secrets",
    "mask_url",
    "mask_url_passwords",
    "register_secret",
    "url_passwords",
    "url_problem",
]
