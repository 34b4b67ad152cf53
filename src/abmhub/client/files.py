"""Files for `abmhub sync`: rows of CSV or JSON Lines in, records out; streamed, one row at a time.

Reading: the format comes from the extension (`.csv`, `.tsv`; `.jsonl`, `.ndjson`). A
mapping renames columns (`Website=domain`; `Notes=` drops one); a dotted name builds a
nested value (`customFields.CRM_STAGE_C`, `from.email`, `contacts.0.email`). CSV cells are
text, so they are typed by the field they land in: numbers for numeric fields and
custom fields of type number, `;`-separated lists for `tags` and multi-selection fields
(or a JSON array), JSON for the object and list fields (`contacts`, `associatedAccounts`,
...) when a cell holds a whole one; an empty cell is left out. Columns that name no field
of the record are ignored (and reported once), so a file pulled with `sync pull` can be
pushed back as it is.

Writing: JSON Lines as the server sent each record, or CSV with one column per field,
`customFields.<KEY>` per custom field, lists `;`-joined and nested records as JSON. The
output goes to a temporary file beside the target, renamed over it when complete.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import orjson
from pydantic import BaseModel

CSV_SUFFIXES = (".csv", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
NUMERIC_FIELDS = frozenset({"amount", "durationMinutes", "openCount", "clickCount", "weight", "score", "count"})
LIST_FIELDS = frozenset({"tags", "segmentIds"})
LIST_SEPARATOR = ";"
CUSTOM_FIELDS = "customFields"


class FileProblem(Exception):
    """The file cannot be read at all (unknown format, no header, unreadable)."""


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise FileProblem(f"{path.name}: use a .csv (or .tsv) or .jsonl (or .ndjson) file")


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`["Website=domain", "Notes="]` → {"Website": "domain", "Notes": ""} (empty: drop the column)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, dest = pair.partition("=")
        if not sep or not source.strip():
            raise ValueError(f"--map takes SRC=DEST (a column name, '=', a field name), not {pair!r}")
        mapping[source.strip()] = dest.strip()
    return mapping


def model_fields(model: type[BaseModel]) -> set[str]:
    """The wire names of a request model's fields."""
    return {field.alias or name for name, field in model.model_fields.items()}


# --- values ----------------------------------------------------------------------------------------


class CellProblem(ValueError):
    pass


def _number(column: str, text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise CellProblem(f"{column}: '{text}' is not a number") from None
    if not math.isfinite(value):
        raise CellProblem(f"{column}: '{text}' is not a number")
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _list(text: str) -> list[Any]:
    if text.startswith("["):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(value, list):
                return value
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def _json_or_text(text: str) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return text


@dataclass(frozen=True, slots=True)
class CellTypes:
    """How the cells of a CSV become values: which fields are numbers, lists, objects."""

    object_fields: frozenset[str]  # top-level fields whose value is an object or a list of objects
    custom_field_types: Mapping[str, str]  # customFields key → labelType

    def value(self, column: str, path: list[str], text: str) -> Any:
        head, leaf = path[0], path[-1]
        if head == CUSTOM_FIELDS and len(path) == 2:
            kind = self.custom_field_types.get(path[1])
            if kind == "number":
                return _number(column, text)
            if kind == "multiSelection":
                return _list(text)
            return text
        if len(path) == 1 and head in self.object_fields:
            return _json_or_text(text)
        if leaf in NUMERIC_FIELDS:
            return _number(column, text)
        if leaf in LIST_FIELDS:
            return _list(text)
        return text


def _split(name: str) -> list[str]:
    # Custom-field keys may hold dots (a label "v1.2" gives "V1.2_C"): everything after
    # `customFields.` is the key.
    if name.startswith(CUSTOM_FIELDS + "."):
        return [CUSTOM_FIELDS, name[len(CUSTOM_FIELDS) + 1 :]]
    return name.split(".")


def _place(target: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `value` at a dotted path; numeric parts index lists (`contacts.0.email`)."""
    node: Any = target
    for position, part in enumerate(path):
        last = position == len(path) - 1
        following = None if last else path[position + 1]
        make = (list) if following is not None and following.isdigit() else dict
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append(None)
            if last:
                node[index] = value
            else:
                if not isinstance(node[index], dict | list):
                    node[index] = make()
                node = node[index]
        else:
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = make()
                node = node[part]


def _compact(value: Any) -> Any:
    """Drop list holes left by sparse indexes (`contacts.0` and `contacts.2` but no `contacts.1`)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value if v is not None]
    return value


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record of the input: its line number, and the item built from it or why there is none."""

    line: int
    item: dict[str, Any] | None
    problem: str | None = None


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read through it (for the progress bar)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class RowReader:
    """Iterate a CSV or JSON Lines file as `SourceRow`s, in order, one at a time.

    `fields` are the record's top-level wire names; `types` say how CSV cells become
    values. `ignored` collects the columns (or JSON keys) that name no field.
    """

    def __init__(
        self,
        path: Path,
        *,
        fields: set[str],
        types: CellTypes,
        mapping: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.format = file_format(path)
        self.fields = fields
        self.types = types
        self.mapping = dict(mapping or {})
        self.ignored: dict[str, None] = {}
        self._targets: dict[str, list[str] | None] = {}
        self.size = path.stat().st_size
        self._counter: _CountingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def _target(self, name: str) -> list[str] | None:
        """Where a column lands (a dotted path), or None when it is dropped or names no field."""
        if name not in self._targets:
            self._targets[name] = self._resolve(name)
        return self._targets[name]

    def _resolve(self, name: str) -> list[str] | None:
        if name in self.mapping:
            dest = self.mapping[name]
        else:  # a column named with other capitals than in --map
            dest = next((v for k, v in self.mapping.items() if k.lower() == name.lower()), name)
        if not dest:
            return None
        path = _split(dest)
        if path[0] not in self.fields or any(not part for part in path):
            self.ignored.setdefault(name)
            return None
        return path

    def __iter__(self) -> Iterator[SourceRow]:
        with open(self.path, "rb") as raw:
            self._counter = _CountingReader(raw)
            buffered = io.BufferedReader(self._counter, buffer_size=256 * 1024)
            text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="" if self.format == "csv" else None)
            try:
                yield from (self._csv(text) if self.format == "csv" else self._jsonl(text))
            except UnicodeDecodeError as exc:
                raise FileProblem(f"{self.path.name} is not UTF-8 text: {exc}") from None

    def _csv(self, text: io.TextIOWrapper) -> Iterator[SourceRow]:
        first = text.readline()
        if not first.strip():
            raise FileProblem(f"{self.path.name}: the first line must be a header naming the columns")
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else max((",", ";", "\t"), key=first.count)
        header = next(csv.reader([first], delimiter=delimiter))
        targets = [(column, self._target(column.strip())) for column in header]
        reader = csv.reader(text, delimiter=delimiter)
        line = 2  # the header is line 1
        while True:
            start = line
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield SourceRow(start, None, f"unreadable CSV: {exc}")
                line = reader.line_num + 2
                continue
            line = reader.line_num + 2  # csv counts the lines it consumed after the header
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                yield SourceRow(start, None, f"{len(cells)} cells but the header names {len(header)} columns")
                continue
            item: dict[str, Any] = {}
            try:
                for (column, path), cell in zip(targets, cells, strict=False):
                    value = cell.strip()
                    if path is None or value == "":
                        continue
                    _place(item, path, self.types.value(column, path, value))
            except CellProblem as exc:
                yield SourceRow(start, None, str(exc))
                continue
            yield SourceRow(start, _compact(item))

    def _jsonl(self, text: io.TextIOWrapper) -> Iterator[SourceRow]:
        for number, raw_line in enumerate(text, start=1):
            if not raw_line.strip():
                continue
            try:
                document = orjson.loads(raw_line)
            except orjson.JSONDecodeError as exc:
                yield SourceRow(number, None, f"not valid JSON: {exc}")
                continue
            if not isinstance(document, dict):
                yield SourceRow(number, None, "a line must hold one JSON object")
                continue
            item: dict[str, Any] = {}
            for key, value in document.items():
                path = self._target(key)
                if path is not None:
                    _place(item, path, value)
            yield SourceRow(number, _compact(item))


# --- writing ---------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as CSV cells: `customFields` spread into `customFields.<KEY>` columns."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == CUSTOM_FIELDS and isinstance(value, dict):
            for field, field_value in value.items():
                flat[f"{CUSTOM_FIELDS}.{field}"] = _cell(field_value)
        else:
            flat[key] = _cell(value)
    return flat


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


class RecordWriter:
    """Write records to `path` through a temporary file; `commit()` renames it into place.

    A writer that is closed without `commit()` (an interrupted pull) deletes its temporary
    file and leaves whatever `path` held before.
    """

    def __init__(self, path: Path, *, columns: Sequence[str] = (), custom_fields: Sequence[str] = ()) -> None:
        self.path = path
        self.format = file_format(path)
        self.written = 0
        self.committed = False
        self._columns = list(columns)
        self._custom = [f"{CUSTOM_FIELDS}.{key}" for key in custom_fields]
        self._csv: csv.DictWriter[str] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        self._temporary = Path(temporary)
        os.chmod(self._temporary, 0o666 & ~_umask())  # mkstemp makes 0600; an output file follows the umask
        self._file: IO[Any]
        if self.format == "jsonl":
            self._file = os.fdopen(handle, "wb")
        else:
            self._file = os.fdopen(handle, "w", newline="", encoding="utf-8")

    def _header(self, first: Mapping[str, Any] | None) -> list[str]:
        columns = list(self._columns)
        for key in first or {}:
            if key not in columns:
                columns.append(key)
        if CUSTOM_FIELDS in columns:
            index = columns.index(CUSTOM_FIELDS)
            known = list(self._custom)
            for key in (first or {}).get(CUSTOM_FIELDS) or {}:
                name = f"{CUSTOM_FIELDS}.{key}"
                if name not in known:
                    known.append(name)
            columns[index : index + 1] = known
        return columns

    def write(self, record: Mapping[str, Any]) -> None:
        if self.format == "jsonl":
            self._file.write(orjson.dumps(record) + b"\n")
        else:
            if self._csv is None:
                self._csv = csv.DictWriter(self._file, fieldnames=self._header(record), extrasaction="ignore")
                self._csv.writeheader()
            self._csv.writerow(flatten(record))
        self.written += 1

    def commit(self) -> None:
        if self.committed:
            return
        if self.format == "csv" and self._csv is None:  # no records: a header all the same
            csv.DictWriter(self._file, fieldnames=self._header(None)).writeheader()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.path)
        self.committed = True

    def close(self) -> None:
        if not self.committed:
            self._file.close()
            self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
