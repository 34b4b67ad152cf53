"""Custom-field keys derived from labels (contract §2.7)."""

from __future__ import annotations

__all__ = ["custom_field_key"]


def custom_field_key(label: str) -> str:
    """Return the key of the custom field labelled `label`.

    Each space becomes `_`, the whole label is uppercased and `_C` is appended; nothing
    else changes, so `Net-Revenue` gives `NET-REVENUE_C` and `crm  stage` gives
    `CRM__STAGE_C`. Only U+0020 counts as a space; tabs and other white space are kept
    as they are, like every other character.
    """
    return label.upper().replace(" ", "_") + "_C"
