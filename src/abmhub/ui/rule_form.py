"""The dynamic-segment editor's form: rows of (field, op, value) to a `SegmentRule` and back.

The form posts (and, for the live preview, gets) `name`, `status` and, for each group of
conditions (`all`: every one must hold; `any`: at least one), repeated `<group>-field`,
`<group>-op` and `<group>-value`. Values are typed text: numbers for the scores and number
custom fields, a probability as a share or a percentage (`0.25` or `25%`), comma-separated
lists for `is one of`. Problems are kept per row and field, in
the API's wording where the API's own request model finds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import ImmutableMultiDict

from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.segments.schemas import PREDICTED_BANDS, RULE_FIELDS, CreateSegmentRequest
from abmhub.web.validation import validation_issues

GROUPS = ("all", "any")
STATUSES = ("active", "draft", "archived")
FIELD_LABELS = {
    "rtp_account_score": "Account score",
    "rtp_journey_stage": "Journey stage",
    "rtp_advertising_activity_score": "Advertising score",
    "rtp_website_intent_score": "Website intent score",
    "rtp_g2_intent_score": "G2 intent score",
    "rtp_bombora_intent_score": "Bombora intent score",
    "tags": "Tags",
    "predictedBand": "Predicted band (A–D)",
    "probability": "Probability of a new opportunity",
}
OPERATOR_LABELS = {
    "eq": "is",
    "ne": "is not",
    "gt": "is above",
    "gte": "is at least",
    "lt": "is below",
    "lte": "is at most",
    "in": "is one of",
    "contains": "contains",
}
SCORE_FIELDS = frozenset(name for name in RULE_FIELDS if name.endswith("_score"))
NUMBER_FIELDS = SCORE_FIELDS | {"probability"}
MAX_CONDITIONS = 50


@dataclass(slots=True)
class ConditionRow:
    field: str = ""
    op: str = "gte"
    value: str = ""
    # Per part of the row (field, op, value): what is wrong with it.
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_blank(self) -> bool:
        return not self.field and not self.value.strip()


def _text(value: Any) -> str:
    # A NUL cannot be stored or compared by PostgreSQL: it never reaches a query.
    return str(value).replace("\x00", "") if value is not None else ""


def _shown(value: Any) -> str:
    """A stored rule value as the editor shows it."""
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None  # no NaN, no infinity


def _share(text: str) -> int | float | None:
    """A probability as typed: a share (`0.25`) or a percentage (`25%`), from 0 to 1."""
    percent = text.endswith("%")
    number = _number(text.removesuffix("%").strip()) if percent else _number(text)
    if number is None:
        return None
    share = round(number / 100, 6) if percent else number
    return share if 0 <= share <= 1 else None


@dataclass(slots=True)
class RuleForm:
    name: str = ""
    status: str = "active"
    conditions: dict[str, list[ConditionRow]] = dataclasses.field(
        default_factory=lambda: {group: [] for group in GROUPS}
    )
    # Problems of the form as a whole: `name`, `status`, `rule`.
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def blank(cls) -> RuleForm:
        form = cls()
        form.conditions["all"].append(ConditionRow(field="rtp_account_score", op="gte", value="50"))
        return form

    @classmethod
    def from_values(cls, values: ImmutableMultiDict[str, Any]) -> RuleForm:
        """The form as sent; rows left wholly blank are dropped."""
        form = cls(name=_text(values.get("name")).strip(), status=_text(values.get("status", "active")).strip())
        for group in GROUPS:
            fields, ops, texts = (values.getlist(f"{group}-{part}") for part in ("field", "op", "value"))
            for index in range(min(max(len(fields), len(ops), len(texts)), MAX_CONDITIONS)):
                row = ConditionRow(
                    field=_text(fields[index] if index < len(fields) else "").strip(),
                    op=_text(ops[index] if index < len(ops) else "").strip(),
                    value=_text(texts[index] if index < len(texts) else ""),
                )
                if not row.is_blank:
                    form.conditions[group].append(row)
        return form

    @classmethod
    def from_segment(cls, name: str, status: str, rule: dict[str, Any] | None) -> RuleForm:
        form = cls(name=name, status=status)
        for group in GROUPS:
            for condition in (rule or {}).get(group) or []:
                form.conditions[group].append(
                    ConditionRow(
                        field=str(condition.get("field", "")),
                        op=str(condition.get("op", "")),
                        value=_shown(condition.get("value")),
                    )
                )
        return form

    def add_row(self, group: str) -> None:
        if group in GROUPS and len(self.conditions[group]) < MAX_CONDITIONS:
            self.conditions[group].append(ConditionRow())

    def remove_row(self, handle: str) -> None:
        """Drop the row `<group>-<index>` (the editor's remove buttons)."""
        group, _, index = handle.partition("-")
        if group in GROUPS and index.isdigit() and int(index) < len(self.conditions[group]):
            del self.conditions[group][int(index)]

    @property
    def condition_count(self) -> int:
        return sum(len(rows) for rows in self.conditions.values())

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(row.errors for rows in self.conditions.values() for row in rows)

    # --- checking --------------------------------------------------------------------------

    def _value(self, row: ConditionRow, custom_fields: Mapping[str, bool]) -> Any:
        """The typed value of a row; a problem with it is noted on the row."""
        if row.field.startswith("customFields.") and row.field not in custom_fields:
            row.errors["field"] = "Choose a field from the list: this workspace has no such custom field."
        numeric = row.field in NUMBER_FIELDS or custom_fields.get(row.field, False)
        text = row.value.strip()
        parts = [part.strip() for part in text.split(",")] if row.op == "in" else [text]
        parts = [part for part in parts if part]
        if not parts:
            row.errors["value"] = "Enter a value." if row.op != "in" else "Enter one or more values, comma-separated."
            return text
        typed: list[Any] = []
        for part in parts:
            if row.field == "probability":
                share = _share(part)
                if share is None:
                    row.errors["value"] = (
                        f"'{part}' is no probability: enter a share from 0 to 1, or a percentage (25%)."
                    )
                    return text
                typed.append(share)
            elif numeric:
                number = _number(part)
                if number is None:
                    row.errors["value"] = f"'{part}' is not a number."
                    return text
                typed.append(number)
            elif row.field == "rtp_journey_stage" and part not in JOURNEY_STAGES:
                row.errors["value"] = f"'{part}' is no journey stage; use one of: {', '.join(JOURNEY_STAGES)}."
                return text
            elif row.field == "predictedBand":
                if part.upper() not in PREDICTED_BANDS:
                    row.errors["value"] = f"'{part}' is no band; use one of: {', '.join(PREDICTED_BANDS)}."
                    return text
                typed.append(part.upper())
            else:
                typed.append(part)
        return typed if row.op == "in" else typed[0]

    def check(
        self, *, custom_fields: Mapping[str, bool] | None = None, for_saving: bool = True
    ) -> dict[str, Any] | None:
        """The rule as stored (what `POST /segments` stores), or None with the problems noted.

        Checked by the API's own request model, so the editor accepts what the API does, on the
        fields the workspace has (`custom_fields`: each `customFields.<KEY>` and whether its values
        are numbers); `for_saving` also wants a name and at least one condition (the preview
        needs neither).
        """
        self.errors.clear()
        rule: dict[str, list[dict[str, Any]]] = {}
        for group in GROUPS:
            for row in self.conditions[group]:
                row.errors.clear()
                if row.is_blank:  # a row just added, not filled in yet
                    continue
                condition = {"field": row.field, "op": row.op, "value": self._value(row, custom_fields or {})}
                rule.setdefault(group, []).append(condition)
        if for_saving and not rule:
            self.errors["rule"] = "Add at least one condition."
        document = {
            "name": self.name if for_saving else self.name or "preview",
            "type": "dynamic",
            "status": self.status,
            "rule": rule,
        }
        checked: CreateSegmentRequest | None = None
        try:
            checked = CreateSegmentRequest.model_validate(document)
        except ValidationError as exc:
            for problem in validation_issues(exc):
                self._note(problem["path"], " ".join(problem["constraints"].values()))
        if self.has_errors or checked is None or checked.rule is None:
            return None
        stored: dict[str, Any] = checked.rule.model_dump(exclude_none=True)
        return stored

    def _note(self, path: str, message: str) -> None:
        parts = path.split(".")
        if len(parts) >= 4 and parts[0] == "rule" and parts[1] in GROUPS and parts[2].isdigit():
            rows = self.conditions[parts[1]]
            index = int(parts[2])
            if index < len(rows):
                rows[index].errors.setdefault(parts[3], message)
                return
        key = parts[0] if parts[0] in ("name", "status") else "rule"
        self.errors.setdefault(key, message)
