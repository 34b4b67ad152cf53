"""Custom-field key derivation (contract §2.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abmhub.custom_fields.keys import custom_field_key


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("Net-Revenue", "NET-REVENUE_C"),
        ("Contract Value", "CONTRACT_VALUE_C"),
        ("crm  stage", "CRM__STAGE_C"),
        ("CRM Stage", "CRM_STAGE_C"),
        ("Renewal Date", "RENEWAL_DATE_C"),
        (" padded ", "_PADDED__C"),
        ("ARR (USD) / year", "ARR_(USD)_/_YEAR_C"),
        ("tab\there", "TAB\tHERE_C"),
        ("already_C", "ALREADY_C_C"),
        ("größe", "GRÖSSE_C"),
    ],
)
def test_key_examples(label: str, key: str) -> None:
    assert custom_field_key(label) == key, f"label {label!r} should give key {key!r}"


@given(st.text(max_size=50))
def test_key_shape(label: str) -> None:
    key = custom_field_key(label)
    assert key.endswith("_C"), f"key {key!r} for {label!r} should end with '_C'"
    assert " " not in key, f"key {key!r} for {label!r} should hold no space"
    expected_length = len(label.upper().replace(" ", "_")) + 2
    assert len(key) == expected_length, (
        f"key {key!r} for {label!r} should only uppercase, replace spaces and append '_C'"
    )
    assert custom_field_key(label) == key, f"the key for {label!r} should not vary between calls"


_ASCII_LABELS = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@given(_ASCII_LABELS, st.data())
def test_labels_differing_only_in_case_share_a_key(label: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(label), max_size=len(label)))
    recased = "".join(c.swapcase() if flip else c for c, flip in zip(label, flips, strict=True))
    assert custom_field_key(recased) == custom_field_key(label), (
        f"{label!r} and {recased!r} differ only in case and should share a key"
    )
    assert custom_field_key(label.lower()) == custom_field_key(label.upper()), (
        f"the lower- and uppercase forms of {label!r} should share a key"
    )


@given(st.text(max_size=50))
def test_key_of_an_uppercased_label_is_the_same(label: str) -> None:
    # Holds for any Unicode text, not just ASCII: uppercasing is the first step anyway.
    assert custom_field_key(label.upper()) == custom_field_key(label), (
        f"uppercasing {label!r} first should not change its key"
    )
