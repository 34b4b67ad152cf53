"""What every bulk push returns (contract §1.4): per-item results in request order and a summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PushOutcome:
    results: list[dict[str, Any]]
    summary: dict[str, int]


def outcome(results: list[dict[str, Any]], statuses: Sequence[str]) -> PushOutcome:
    """Count the results by status; `statuses` fixes the summary's keys and their order."""
    summary = {"total": len(results), **dict.fromkeys(statuses, 0)}
    for result in results:
        summary[result["status"]] += 1
    return PushOutcome(results, summary)
