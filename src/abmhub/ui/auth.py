"""Who is signed in to the dashboard, and which requests may change anything.

A session is a signed cookie (HttpOnly, SameSite=Lax) naming the API key it was opened with
— by the key row's id and the start of its hash, never the key itself — and every request
looks that key up again: revoking the key (or issuing the user a new one) ends the session
at its next request. The signing secret comes from the settings or, when none is set, from
the database, so that every server process accepts every other's cookies.

Forms change state only when the browser says the request comes from the dashboard's own
origin (`Sec-Fetch-Site`, or `Origin` where a browser does not send it): a page on another
site cannot post to it with the user's cookie. The API under /api, authenticated by a header
a browser never adds by itself, is not concerned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.tenancy import secrets as server_secrets
from abmhub.tenancy import service as tenancy
from abmhub.tenancy.service import KeyHolder
from abmhub.ui.errors import UI_PREFIX, BadRequest, CrossSiteRequest, SignInRequired
from abmhub.web.dependencies import database, url_holds_nul

SESSION_COOKIE = "abmhub_session"
SESSION_MAX_AGE_SECONDS = 12 * 60 * 60  # a working day; then sign in again
# Enough of the key's SHA-256 to tell it from any other key; the hash is no credential anyway.
KEY_HASH_PREFIX = 16
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class SessionClaim:
    """What a session cookie says: which key opened it."""

    key_id: int
    key_hash_prefix: str


class SessionSigner:
    """Signs and checks session cookies (itsdangerous: HMAC with a timestamp)."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="abmhub.ui.session")

    def issue(self, holder: KeyHolder) -> str:
        return self._serializer.dumps({"k": holder.key_id, "h": holder.key_hash[:KEY_HASH_PREFIX]})

    def read(self, token: str) -> SessionClaim | None:
        """The claim of a cookie this server signed within the session lifetime, else None."""
        try:
            data: Any = self._serializer.loads(token, max_age=SESSION_MAX_AGE_SECONDS)
        except BadSignature:  # forged, altered, or expired (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict):
            return None
        key_id, prefix = data.get("k"), data.get("h")
        if type(key_id) is not int or not isinstance(prefix, str) or len(prefix) != KEY_HASH_PREFIX:
            return None
        return SessionClaim(key_id, prefix)


_signer_lock = threading.Lock()


def session_signer(request: Request) -> SessionSigner:
    """The application's signer, made on first use (the database secret needs a migrated database)."""
    state = request.app.state
    signer: SessionSigner | None = getattr(state, "ui_session_signer", None)
    if signer is None:
        with _signer_lock:
            signer = getattr(state, "ui_session_signer", None)
            if signer is None:
                secret = state.settings.session_secret or server_secrets.get_or_create_secret(
                    state.database, name=server_secrets.SESSION_SECRET
                )
                signer = state.ui_session_signer = SessionSigner(secret)
    return signer


def signed_in(request: Request, db: Database = Depends(database)) -> KeyHolder:
    """The signed-in key holder of a dashboard request; else SignInRequired (to the sign-in page)."""
    if url_holds_nul(request):  # PostgreSQL cannot even compare such text
        raise BadRequest("The address must not contain NUL characters.")
    token = request.cookies.get(SESSION_COOKIE)
    claim = session_signer(request).read(token) if token else None
    holder = (
        tenancy.active_key_holder(db, key_id=claim.key_id, key_hash_prefix=claim.key_hash_prefix)
        if claim is not None
        else None
    )
    if holder is None:
        raise SignInRequired(_return_path(request))
    return holder


def _return_path(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def open_session(response: Response, request: Request, holder: KeyHolder) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_signer(request).issue(holder),
        max_age=SESSION_MAX_AGE_SECONDS,
        path=UI_PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def close_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=UI_PREFIX, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


# --- cross-site requests -------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL or an Origin header value, the port made explicit."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def is_same_origin(request: Request) -> bool:
    """Whether the browser says this request comes from a page of the dashboard's own origin.

    Sec-Fetch-Site when the browser sends it (`none`: the user's own navigation); otherwise the
    Origin header must name this very origin. Neither header: refused (no browser that lets
    pages post forms leaves out both).
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() in SAME_SITE_FETCHES
    origin = request.headers.get("origin")
    if origin is None:
        return False
    mine = _origin(f"{request.url.scheme}://{request.url.netloc}")
    return mine is not None and _origin(origin) == mine


def refuse_cross_site(request: Request) -> None:
    """A dependency of every dashboard route: state changes only from the dashboard's own pages."""
    if request.method not in SAFE_METHODS and not is_same_origin(request):
        raise CrossSiteRequest()


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the dashboard itself, never another site."""
    if not value or "\\" in value or any(ord(char) < 0x20 for char in value):
        return UI_PREFIX
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or ".." in parts.path:
        return UI_PREFIX
    if parts.path != UI_PREFIX and not parts.path.startswith(UI_PREFIX + "/"):
        return UI_PREFIX
    return value
