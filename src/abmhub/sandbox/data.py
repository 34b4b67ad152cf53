"""A realistic, deterministic sandbox data set: pure functions of (seed, number of accounts, day).

Every account is planned with everything that belongs to it — its deals with their stage
history, its calls and emails with their contacts, its intent signals of the last
`days` days (default `DAYS`) — from one random stream seeded by `seed`. The same seed and day give the
same data, and the first N accounts of a larger data set are the N accounts of a smaller
one. A hidden "heat" per account drives how much intent, engagement and pipeline it has,
so that scores spread out the way they do in real workspaces: most accounts cold, a
fifth of them in market, a few customers.

The items are wire dicts, exactly what the HTTP API takes (contract §2.2, §2.8, §2.11, §3.1).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DAYS = 90
SELLER_DOMAIN = "yourcompany.example"

# --- custom fields and pipelines -------------------------------------------------------------

INDUSTRIES = (
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Logistics",
    "Education", "Media", "Energy", "Telecommunications", "Professional Services", "Public Sector",
)  # fmt: skip
CRM_STAGES = ("Prospect", "Qualified", "Customer", "Churned")
CUSTOM_FIELDS: tuple[dict[str, Any], ...] = (
    {"label": "Industry", "labelType": "singleSelection", "options": list(INDUSTRIES), "description": "Sandbox"},
    {"label": "Employees", "labelType": "number", "description": "Sandbox"},
    {"label": "CRM Stage", "labelType": "singleSelection", "options": list(CRM_STAGES), "description": "Sandbox"},
    {"label": "Renewal Date", "labelType": "date", "description": "Sandbox"},
)

NEW_BUSINESS = "sandbox-new-business"
RENEWAL = "sandbox-renewal"
PIPELINES: tuple[dict[str, Any], ...] = (
    {
        "pipelineId": NEW_BUSINESS,
        "pipelineLabel": "New Business",
        "stages": [
            {"stageId": "nb-discovery", "stageLabel": "Discovery"},
            {"stageId": "nb-demo", "stageLabel": "Demo"},
            {"stageId": "nb-proposal", "stageLabel": "Proposal"},
            {"stageId": "nb-negotiation", "stageLabel": "Negotiation"},
            {"stageId": "nb-won", "stageLabel": "Closed Won"},
            {"stageId": "nb-lost", "stageLabel": "Closed Lost"},
        ],
    },
    {
        "pipelineId": RENEWAL,
        "pipelineLabel": "Renewal",
        "stages": [
            {"stageId": "rn-open", "stageLabel": "Renewal Open"},
            {"stageId": "rn-committed", "stageLabel": "Committed"},
            {"stageId": "rn-won", "stageLabel": "Renewed (Won)"},
            {"stageId": "rn-lost", "stageLabel": "Churned (Lost)"},
        ],
    },
)

# --- names -------------------------------------------------------------------------------------

_PREFIXES = (
    "North", "Blue", "Silver", "Bright", "Iron", "Red", "Green", "High", "Clear", "Swift", "Deep",
    "True", "Bold", "Grand", "Quiet", "Open", "Stone", "Sun", "Star", "Cloud", "River", "Ever",
    "Pine", "Oak", "Maple", "Cedar", "Amber", "Coral", "Crystal", "Golden", "Lunar", "Polar",
    "Rapid", "Summit", "Terra", "Urban", "Vivid", "West", "East", "South", "Nova", "Prime",
    "Atlas", "Apex", "Arc", "Echo", "Falcon", "Harbor", "Horizon", "Keystone", "Lake",
    "Meadow", "Orbit", "Pioneer", "Quantum", "Sierra", "Tidal", "Vertex", "Willow", "Zenith",
)  # fmt: skip
_ROOTS = (
    "wind", "stone", "field", "bridge", "peak", "leaf", "wave", "forge", "path", "gate", "spark",
    "grid", "line", "point", "shore", "ridge", "crest", "vale", "beam", "works", "bay", "wood",
    "light", "view", "mark", "port", "core", "flow", "scale", "shift", "stack", "sphere",
    "trail", "well", "yard", "mill", "haven", "loop", "dale", "rock",
)  # fmt: skip
_KINDS = (
    "Analytics", "Systems", "Labs", "Software", "Health", "Logistics", "Robotics", "Networks",
    "Cloud", "Security", "Bio", "Energy", "Capital", "Foods", "Media", "Motors", "Data",
    "Technologies", "Solutions", "Partners", "Industries", "Group", "Dynamics", "Holdings",
    "Insurance", "Pharma", "Retail", "Learning", "Studios", "Materials",
)  # fmt: skip
_TLDS = ("com", "com", "com", "com", "com", "com", "io", "co", "ai", "net")
_FIRST = (
    "James", "Mary", "Wei", "Priya", "Carlos", "Aisha", "Lukas", "Sofia", "Hiroshi", "Emma",
    "Noah", "Olivia", "Mateo", "Chloe", "Omar", "Lena", "Ivan", "Grace", "Kwame", "Mei",
    "Daniel", "Sara", "Arjun", "Nora", "Felix", "Ana", "Tom", "Yuki", "Leila", "Samuel",
)  # fmt: skip
_LAST = (
    "Smith", "Garcia", "Chen", "Patel", "Muller", "Rossi", "Kim", "Nguyen", "Silva", "Brown",
    "Johnson", "Kowalski", "Haddad", "Tanaka", "Okafor", "Larsen", "Dubois", "Novak", "Reyes",
    "Schmidt", "Cohen", "Ali", "Jensen", "Moreau", "Santos", "Ivanova", "Singh", "Walsh",
)  # fmt: skip
_ROLES = (  # (title, department, seniority)
    ("Chief Marketing Officer", "Marketing", "C-Level"),
    ("VP of Marketing", "Marketing", "VP"),
    ("Director of Demand Generation", "Marketing", "Director"),
    ("Marketing Operations Manager", "Marketing", "Manager"),
    ("VP of Sales", "Sales", "VP"),
    ("Head of Revenue Operations", "Operations", "Director"),
    ("Chief Technology Officer", "Engineering", "C-Level"),
    ("VP of Engineering", "Engineering", "VP"),
    ("Engineering Manager", "Engineering", "Manager"),
    ("IT Director", "IT", "Director"),
    ("Procurement Manager", "Finance", "Manager"),
    ("CFO", "Finance", "C-Level"),
    ("Data Analyst", "Operations", "IC"),
    ("Solutions Architect", "Engineering", "IC"),
)
_REPS = tuple(
    (f"{first} {last}", f"{first.lower()}.{last.lower()}@{SELLER_DOMAIN}", f"rep-{n:02d}")
    for n, (first, last) in enumerate(
        [
            ("Jane", "Smith"),
            ("Raj", "Mehta"),
            ("Laura", "Becker"),
            ("Diego", "Alvarez"),
            ("Hannah", "Lee"),
            ("Marcus", "Wright"),
            ("Ines", "Costa"),
            ("Tobias", "Berg"),
        ],
        start=1,
    )
)
_CALL_TITLES = ("Discovery call", "Product demo", "Pricing review", "Technical deep dive", "Check-in", "Renewal call")
_CALL_OUTCOMES = ("Connected", "Connected", "Connected", "Left voicemail", "No answer")
_EMAIL_SUBJECTS = (
    "Following up on our call", "Your ABM evaluation", "Case study: a team like yours",
    "Pricing and packaging", "Next steps", "Invitation: customer roundtable", "Quick question",
)  # fmt: skip
_PAGES = (
    "/pricing",
    "/product",
    "/product/intent",
    "/case-studies",
    "/demo",
    "/blog/abm-playbook",
    "/integrations",
    "/security",
    "/about",
)
_G2_TYPES = ("profile_view", "profile_view", "category_view", "comparison", "pricing_view")
_TOPICS = (
    "Account-Based Marketing",
    "Intent Data",
    "Marketing Automation",
    "Sales Intelligence",
    "Customer Data Platform",
    "Revenue Operations",
)
_LINKEDIN_TYPES = ("impression", "impression", "impression", "click", "engagement")
_REGIONS = ("na", "na", "na", "emea", "emea", "apac", "latam")


# --- the plan of one account --------------------------------------------------------------------


@dataclass(slots=True)
class AccountPlan:
    """One account and everything that belongs to it, as wire items."""

    account: dict[str, Any]
    deals: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)


def default_as_of() -> datetime:
    """The moment the data set ends: the start of the current UTC day (same day, same data)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class SandboxGenerator:
    """Plans accounts one after another; `plans()` is lazy, so memory stays small
    (only the names and domains already used are remembered, to keep them unique)."""

    def __init__(self, *, seed: int, accounts: int, as_of: datetime | None = None, days: int = DAYS) -> None:
        if accounts < 0:
            raise ValueError("accounts cannot be negative")
        if days < 1:
            raise ValueError("the data set covers at least one day")
        self.seed = seed
        self.days = days  # the data set covers the `days` days before `as_of`
        self.count = accounts
        self.as_of = (as_of or default_as_of()).astimezone(UTC)
        self._rng = random.Random(f"abmhub-sandbox:{seed}")
        self._names: set[str] = set()
        self._domains: set[str] = set()
        self._activity = 0
        self._signal = 0

    def plans(self) -> Iterator[AccountPlan]:
        for index in range(self.count):
            yield self._plan(index)

    # --- identity ---------------------------------------------------------------------------

    def _identity(self, index: int) -> tuple[str, str, str]:
        rng = self._rng
        for _ in range(20):
            prefix, root, kind = rng.choice(_PREFIXES), rng.choice(_ROOTS), rng.choice(_KINDS)
            name = f"{prefix}{root} {kind}"
            if name not in self._names:
                break
        else:
            name = f"{prefix}{root} {kind} {index + 1}"
        self._names.add(name)
        base = f"{prefix}{root}".lower()
        for candidate in (
            f"{base}.{rng.choice(_TLDS)}",
            f"{base}{kind.lower()}.com",
            f"{base}-{kind.lower()}.{rng.choice(_TLDS)}",
            f"{base}{kind.lower()}{index + 1}.com",
        ):
            if candidate not in self._domains:
                domain = candidate
                break
        self._domains.add(domain)
        return name, f"{prefix}{root}", domain

    def _moment(self, heat: float) -> datetime:
        """A time in the data set's days; hot accounts' events lean towards recent days."""
        rng = self._rng
        days_ago = int(self.days * rng.random() ** (1.0 + 2.0 * heat))
        return self.as_of - timedelta(days=days_ago + 1) + timedelta(seconds=rng.randrange(8 * 3600, 19 * 3600))

    # --- one account ------------------------------------------------------------------------

    def _plan(self, index: int) -> AccountPlan:
        rng = self._rng
        name, short, domain = self._identity(index)
        heat = rng.random() ** 3  # most accounts cold, a few hot
        employees = int(min(250_000, max(5, rng.lognormvariate(5.5, 1.6))))
        tier = "enterprise" if employees >= 5000 else "mid-market" if employees >= 500 else "smb"
        region = rng.choice(_REGIONS)
        industry = rng.choice(INDUSTRIES)
        tags = [tier, region]
        if heat > 0.45:
            tags.append("target-fy26")
        account: dict[str, Any] = {
            "domain": domain,
            "name": name,
            "shortName": short,
            "linkedinUrl": f"https://www.linkedin.com/company/{_slug(name)}",
            "tags": tags,
        }
        if rng.random() < 0.85:
            account["externalId"] = f"crm-{index + 1:07d}"
        plan = AccountPlan(account)
        won = self._deals(plan, index, heat, tier, region, domain, name)
        stage = "Customer" if won else "Qualified" if plan.deals else rng.choice(("Prospect", "Prospect", "Qualified"))
        if not won and rng.random() < 0.02:
            stage = "Churned"
        custom: dict[str, Any] = {"INDUSTRY_C": industry, "EMPLOYEES_C": employees, "CRM_STAGE_C": stage}
        if won:
            custom["RENEWAL_DATE_C"] = (self.as_of + timedelta(days=rng.randrange(30, 365))).date().isoformat()
        account["customFields"] = custom
        self._activities(plan, heat, domain, name)
        self._signals(plan, heat, domain)
        return plan

    def _deals(
        self, plan: AccountPlan, index: int, heat: float, tier: str, region: str, domain: str, name: str
    ) -> bool:
        """Zero to two deals with their stage history; True when one of them is won."""
        rng = self._rng
        count = 0
        if rng.random() < 0.04 + 0.55 * heat:
            count = 2 if rng.random() < 0.15 else 1
        won = False
        low, high = {"smb": (5, 25), "mid-market": (25, 120), "enterprise": (100, 800)}[tier]
        for number in range(count):
            renewal = number == 1
            pipeline = PIPELINES[1] if renewal else PIPELINES[0]
            stages = pipeline["stages"]
            opened = self._moment(heat * 0.5)
            *open_stages, won_stage, lost_stage = stages
            roll = rng.random()
            if roll < 0.2 + 0.2 * heat:
                path = [*open_stages, won_stage]
            elif roll < 0.35:
                path = [*open_stages[: rng.randrange(1, len(open_stages) + 1)], lost_stage]
            else:
                path = open_stages[: rng.randrange(1, len(open_stages) + 1)]
            # Stage after stage, strictly later each time (the server takes the latest entry
            # as the deal's current stage), squeezed into the time left before `as_of`.
            offsets = [0.0]
            for _ in path[1:]:
                offsets.append(offsets[-1] + rng.randrange(2 * 86400, 15 * 86400))
            room = (self.as_of - timedelta(hours=1) - opened).total_seconds() - len(path)
            if offsets[-1] > room:
                offsets = [o * room / offsets[-1] for o in offsets]
            history = [
                {
                    "stageId": stage["stageId"],
                    "stageLabel": stage["stageLabel"],
                    "enteredAt": iso(opened + timedelta(seconds=int(offset) + step)),
                }
                for step, (stage, offset) in enumerate(zip(path, offsets, strict=True))
            ]
            final = path[-1]
            closed = final in (won_stage, lost_stage)
            won = won or final is won_stage
            rep = rng.choice(_REPS)
            deal: dict[str, Any] = {
                "externalDealId": f"deal-{index + 1:07d}-{number + 1}",
                "name": f"{name} — {'Renewal' if renewal else 'New business'}",
                "amount": float(rng.randrange(low, high + 1) * 1000),
                "dealCurrencyCode": "EUR" if region == "emea" and rng.random() < 0.6 else "USD",
                "pipelineId": pipeline["pipelineId"],
                "pipelineLabel": pipeline["pipelineLabel"],
                "stageId": final["stageId"],
                "stageLabel": final["stageLabel"],
                "startDate": iso(opened),
                "ownerName": rep[0],
                "ownerEmail": rep[1],
                "ownerId": rep[2],
                "associatedAccounts": [{"domain": domain, "name": name}],
                "stageHistory": history,
            }
            if closed:
                deal["closedDate"] = history[-1]["enteredAt"]
            plan.deals.append(deal)
        return won

    def _activities(self, plan: AccountPlan, heat: float, domain: str, name: str) -> None:
        rng = self._rng
        count = int(rng.random() * 2.5 + heat * rng.uniform(4, 14))
        if count == 0:
            return
        contacts = []
        for _ in range(rng.randrange(2, 6)):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            title, department, seniority = rng.choice(_ROLES)
            contacts.append(
                {
                    "email": f"{first.lower()}.{last.lower()}@{domain}",
                    "externalContactId": f"contact-{_slug(domain)}-{first.lower()}-{last.lower()}",
                    "name": f"{first} {last}",
                    "title": title,
                    "department": department,
                    "seniority": seniority,
                    "linkedinUrl": f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}-{rng.randrange(1000, 9999)}",
                }
            )
        rep = rng.choice(_REPS)
        for _ in range(count):
            self._activity += 1
            kind = "call" if rng.random() < 0.45 else "email"
            activity: dict[str, Any] = {
                "externalActivityId": f"sandbox-{self.seed}-{kind}-{self._activity:08d}",
                "activityType": kind,
                "occurredAt": iso(self._moment(heat)),
                "domain": domain,
                "accountName": name,
                "ownerEmail": rep[1],
                "ownerName": rep[0],
                "ownerId": rep[2],
                "from": {"name": rep[0], "email": rep[1]},
                "contacts": rng.sample(contacts, k=1 if rng.random() < 0.7 else 2),
            }
            if kind == "call":
                activity.update(
                    callTitle=rng.choice(_CALL_TITLES),
                    durationMinutes=rng.randrange(5, 61, 5),
                    outcome=rng.choice(_CALL_OUTCOMES),
                    direction="outbound" if rng.random() < 0.85 else "inbound",
                )
            else:
                activity.update(
                    subject=rng.choice(_EMAIL_SUBJECTS),
                    openCount=rng.randrange(0, 6),
                    clickCount=rng.randrange(0, 3),
                )
            plan.activities.append(activity)

    def _signals(self, plan: AccountPlan, heat: float, domain: str) -> None:
        rng = self._rng

        def how_many(scale: float) -> int:
            return int(heat * scale * rng.uniform(0.5, 1.5) + (1 if rng.random() < 0.25 else 0))

        def add(source: str, kind: str, **extra: Any) -> None:
            self._signal += 1
            plan.signals.append(
                {
                    "source": source,
                    "type": kind,
                    "domain": domain,
                    "occurredAt": iso(self._moment(heat)),
                    "externalSignalId": f"sandbox-{self.seed}-{source}-{self._signal:09d}",
                    **extra,
                }
            )

        for _ in range(how_many(30)):
            add("website", "page_view", url=f"https://{SELLER_DOMAIN}{rng.choice(_PAGES)}")
        for _ in range(how_many(8)):
            add("g2", rng.choice(_G2_TYPES))
        for _ in range(how_many(6)):
            add(
                "bombora",
                "surge",
                topic=rng.choice(_TOPICS),
                score=int(min(100, 40 + heat * 50 + rng.uniform(-10, 20))),
            )
        for _ in range(how_many(12)):
            kind = rng.choice(_LINKEDIN_TYPES)
            add("linkedin_ads", kind, count=rng.randrange(1, 40) if kind == "impression" else rng.randrange(1, 4))
