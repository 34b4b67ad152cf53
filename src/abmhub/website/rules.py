"""Page rules: which pages of a site show buying intent, and how much (contract §9).

A rule is `{pattern, category, weight}`; `pattern` matches the URL's path, `*` standing for any
run of characters (`/pricing*`, `*/case-studies/*`), case-insensitively. The first rule that
matches decides; a page no rule matches is a plain page view. A site without rules of its own
uses `BUILT_IN`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_RULES = 100


@dataclass(frozen=True, slots=True)
class PageRule:
    pattern: str
    category: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        weight: float | int = int(self.weight) if float(self.weight).is_integer() else self.weight
        return {"pattern": self.pattern, "category": self.category, "weight": weight}


# The pages B2B buyers visit when they evaluate: weights are points of the website score per
# view (a plain page view is 1). Careers pages weigh 0: job seekers are not buyers.
BUILT_IN = (
    PageRule("*/pricing*", "pricing", 5),
    PageRule("*/plans*", "pricing", 5),
    PageRule("*demo*", "demo", 5),
    PageRule("*/contact*", "contact", 4),
    PageRule("*/talk-to-sales*", "contact", 4),
    PageRule("*/compare*", "comparison", 4),
    PageRule("*-vs-*", "comparison", 4),
    PageRule("*/alternative*", "comparison", 4),
    PageRule("*case-stud*", "case-study", 3),
    PageRule("*/customers/*", "case-study", 3),
    PageRule("/docs*", "docs", 2),
    PageRule("*/documentation*", "docs", 2),
    PageRule("*/careers*", "careers", 0),
    PageRule("*/jobs*", "careers", 0),
)


@dataclass(frozen=True, slots=True)
class Match:
    category: str
    weight: float


def rules_from(stored: Sequence[dict[str, Any]] | None) -> tuple[PageRule, ...]:
    """A site's rules as stored (NULL: the built-in ones)."""
    if stored is None:
        return BUILT_IN
    return tuple(PageRule(r["pattern"], r["category"], float(r["weight"])) for r in stored)


def classify(path: str, rules: Sequence[PageRule]) -> Match | None:
    lowered = path.lower()
    for rule in rules:
        if _compiled(rule.pattern).fullmatch(lowered):
            return Match(rule.category, rule.weight)
    return None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")))
