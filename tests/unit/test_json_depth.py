"""The request-body depth limit (`nests_within`): the level walk agrees with the plain definition."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from abmhub.web.dependencies import MAX_JSON_DEPTH, nests_within

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    """Levels of a JSON value by definition: a scalar or an empty container is 1."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max((_depth(child) for child in children), default=0)


@settings(max_examples=500)
@given(_json, st.integers(min_value=1, max_value=8))
def test_agrees_with_the_recursive_definition(value: Any, limit: int) -> None:
    assert nests_within(value, limit) == (_depth(value) <= limit), (
        f"{value!r} is {_depth(value)} levels deep; the limit is {limit}"
    )


def test_the_limit_itself_is_allowed_and_one_more_is_not() -> None:
    at_limit: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        at_limit = [at_limit]
    assert nests_within(at_limit), f"{MAX_JSON_DEPTH} levels should be allowed"
    assert not nests_within({"k": at_limit}), f"{MAX_JSON_DEPTH + 1} levels should be refused"
    assert nests_within({"k": [[]] * 3}, 3) and not nests_within({"k": [[1]]}, 3), "an empty container adds no level"


def test_a_hostile_depth_is_refused_without_recursion() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert not nests_within(deep), "100,000 levels should be refused (and not overflow the stack)"
