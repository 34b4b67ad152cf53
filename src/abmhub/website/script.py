"""The tracking script served at `GET /s/<siteKey>.js` (contract §9): `tracker.js` with the
site's key and the collect URL filled in.

The template quotes its placeholders (`"__ABMHUB_SITE_KEY__"`), so that it is valid JavaScript
as it stands; each quoted placeholder is replaced by a JSON string literal, so that no value
(a quote, a backslash, `</script>` when a page inlines the script) can end the string early.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib.resources import files

SITE_KEY_PLACEHOLDER = '"__ABMHUB_SITE_KEY__"'
COLLECT_URL_PLACEHOLDER = '"__ABMHUB_COLLECT_URL__"'
# One pass over both, so that a value that spells the other placeholder is never substituted.
_PLACEHOLDERS = re.compile(f"{re.escape(SITE_KEY_PLACEHOLDER)}|{re.escape(COLLECT_URL_PLACEHOLDER)}")


@cache
def script_template() -> str:
    """tracker.js as shipped in the package, read once per process."""
    template = (files("abmhub") / "website" / "tracker.js").read_text(encoding="utf-8")
    for placeholder in (SITE_KEY_PLACEHOLDER, COLLECT_URL_PLACEHOLDER):
        if template.count(placeholder) != 1:
            raise RuntimeError(f"tracker.js must hold {placeholder} exactly once")
    return template


def js_string(value: str) -> str:
    """`value` as a JavaScript string literal that is also safe inside an HTML <script>."""
    # json.dumps escapes quotes, backslashes, control characters and (ensure_ascii) U+2028/2029;
    # "<" is escaped too, so "</script>" or "<!--" cannot end an inline script.
    return json.dumps(value).replace("<", "\\u003c")


def render_script(site_key: str, collect_url: str) -> bytes:
    """The script for one site, as served: UTF-8 JavaScript."""
    values = {SITE_KEY_PLACEHOLDER: js_string(site_key), COLLECT_URL_PLACEHOLDER: js_string(collect_url)}
    return _PLACEHOLDERS.sub(lambda found: values[found.group()], script_template()).encode()


def script_etag(body: bytes) -> str:
    """A strong ETag for a rendered script: it changes whenever the template, the key or the
    collect URL does, so caches revalidate cheaply instead of serving a stale script."""
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
