"""Athena SQL into the Trino statements the stand-in runs. Athena sends DDL to its Hive engine
and everything else to its Trino engine; the stand-in has Trino alone, so Hive DDL is rewritten
here. Queries name the catalog `awsdatacatalog`, which is a Trino catalog too (Hive over Glue,
redirecting Iceberg tables to the `iceberg` catalog), so DML passes unchanged.

Translated, by targeted patterns (this is no SQL parser; what matches nothing passes unchanged):
  every statement     a trailing `;` is dropped; in Hive DDL `` `x` `` becomes `"x"`
  create database|schema [if not exists] s [comment …] [location '…']
                      -> create schema [if not exists] awsdatacatalog."s" [with (location = '…')]
  drop database|schema [if exists] s [cascade|restrict]
                      -> with cascade, `drop table iceberg."s"."t"` for each Iceberg table first
                         (Trino's Hive catalog cannot drop them), then drop schema … [cascade]
  create external table [if not exists] s.t (c type [comment '…'], …) [comment '…']
      [partitioned by (k type, …)] [clustered by (c) into n buckets] [row format …]
      [stored as fmt | stored as inputformat '…' outputformat '…'] [location '…'] [tblproperties (…)]
                      -> create table awsdatacatalog."s"."t" (…) with (external_location = '…',
                         format = 'FMT', partitioned_by = ARRAY[…], bucketed_by, bucket_count,
                         textfile_field_separator, skip_header_line_count); other table
                         properties (parquet.compression, projection.*, …) are dropped
  create table s.t (…) [partitioned by (col | day(ts) | bucket(n, c) | truncate(n, c), …)]
      location '…' tblproperties ('table_type'='ICEBERG'[, 'format'='…'])
                      -> create table iceberg."s"."t" (…) with (location, format, partitioning);
                         other table properties (write_compression, …) are dropped
  column types        string -> varchar, int -> integer, float -> real, binary -> varbinary,
                      array<t> -> array(t), map<k,v> -> map(k, v), struct<a:t> -> row("a" t);
                      others as they are
  create table [if not exists] t with (table_type='ICEBERG', is_external=false, location=…,
      partitioning=…, format=…, write_compression=…, vacuum_*/optimize_* …) as select …
                      -> create table iceberg."s"."t" with (location, partitioning, format) as …,
                         write_compression as the session's iceberg.compression_codec
  create table t with (external_location, partitioned_by, bucketed_by, bucket_count, format,
      field_delimiter, write_compression) as select … (Hive CTAS)
                      -> the same in awsdatacatalog; field_delimiter as textfile_field_separator,
                         write_compression as the session's awsdatacatalog.compression_codec
  partition transforms  bucket(n, c) and truncate(n, c) -> bucket(c, n), truncate(c, n)
  alter table t add columns (c type, …)       -> alter table … add column c type, one per column
  alter table t change column a b type        -> Iceberg: rename column (when a != b) and
                         alter column b set data type; Hive: a Glue update of the column (Trino's
                         Hive connector cannot change a column's type; Athena's only edits Glue)
  alter table t rename to s.u                 -> Iceberg: in catalog iceberg (Trino will not
                         rename a redirected table across catalogs); Hive: in awsdatacatalog,
                         which Trino refuses for Glue, as Athena refuses it
  alter table t add [if not exists] partition (k='v', …) [location '…'] …
                      -> call awsdatacatalog.system.register_partition(…) (with a location) or
                         create_empty_partition(…); `if not exists` ignores ALREADY_EXISTS
  alter table t drop [if exists] partition (k='v', …), …
                      -> call awsdatacatalog.system.unregister_partition(…); `if exists` ignores NOT_FOUND
  drop table|view [if exists] t [purge]       -> drop table|view [if exists] awsdatacatalog."s"."t"
  msck repair table t -> call awsdatacatalog.system.sync_partition_metadata('s', 't', 'ADD')
  show tables [in s] ['pat']                  -> show tables from awsdatacatalog."s" [like 'pat'],
                         `*` as `%`, the column named tab_name
  show databases|schemas [like 'pat']         -> show schemas from awsdatacatalog …, database_name
  show columns in|from t                      -> its column names from information_schema, as field
  describe [formatted|extended] t, show create table t, show tblproperties t
                      -> Trino's describe, show create table, and the table's properties
Unqualified names take the query's database (QueryExecutionContext.Database).

Not translated (they reach Trino as written, backticks made double quotes, and fail there):
replace columns, set tblproperties, set location, show partitions, create table like, and
Hive DDL clauses not listed above.

`python3 translate.py` runs the self-test table at the bottom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol

HIVE = "awsdatacatalog"
ICEBERG = "iceberg"

_IDENT = r'(?:`[^`]+`|"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}}"
_FLAGS = re.I | re.S


class Tables(Protocol):
    """What translation asks Glue: whether a table is Iceberg, a schema's Iceberg tables."""

    def is_iceberg(self, schema: str, table: str) -> bool: ...

    def iceberg_tables(self, schema: str) -> list[str]: ...


@dataclass
class Step:
    """One thing to do for a query: a Trino statement, or (`glue`) a change the front makes on
    Glue itself. `ignore` names a Trino error that counts as success; `labels` renames the
    result's columns; `session` holds Trino session properties for the statement."""

    sql: str | None = None
    glue: Callable[[object], None] | None = None
    ignore: str | None = None
    labels: list[str] | None = None
    session: dict[str, str] = field(default_factory=dict)
    describe: str = ""  # what `glue` does, for the event log

    def text(self) -> str:
        return self.sql if self.sql is not None else f"(glue) {self.describe}"


def translate(sql: str, database: str, tables: Tables) -> list[Step]:
    """The steps that run Athena's `sql` with `database` as the default schema."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    body = strip_comments(text)
    for pattern, rule in _RULES:
        match = re.match(pattern, body, _FLAGS)
        if match:
            steps = rule(match, database, tables)
            if steps is not None:
                return steps
    return [Step(backticks(text) if statement_type(text) != "DML" else text)]


def strip_comments(sql: str) -> str:
    """`sql` without the comments and blank space in front of it."""
    while True:
        stripped = re.sub(r"^\s*(--[^\n]*(\n|$)|/\*.*?\*/)", "", sql, count=1, flags=re.S)
        if stripped == sql:
            return sql.strip()
        sql = stripped


def statement_type(sql: str) -> str:
    """Athena's StatementType: DDL, DML or UTILITY."""
    body = strip_comments(sql).lower()
    word = re.match(r"\(*\s*(\w+)", body)
    first = word.group(1) if word else ""
    if first in ("show", "describe", "desc", "explain"):
        return "UTILITY"
    if first in ("alter", "drop", "msck"):
        return "DDL"
    if first == "create":
        return "DML" if _ctas_match(body) else "DDL"
    return "DML"


def writes(sql: str) -> bool:
    """Whether `sql` changes a table (what an injected Iceberg commit failure applies to)."""
    body = strip_comments(sql).lower()
    return bool(re.match(r"(insert|merge|update|delete|optimize|vacuum)\b", body)) or bool(_ctas_match(body))


def written_table(sql: str) -> str:
    """The table `sql` writes, as written, or `the table` when no pattern finds it."""
    match = re.match(
        rf"(?:insert\s+into|merge\s+into|update|delete\s+from|optimize|vacuum"
        rf"|create\s+table(?:\s+if\s+not\s+exists)?)\s+({NAME})",
        strip_comments(sql), _FLAGS)
    return ".".join(unquote(match.group(1))) if match else "the table"


# --- names, literals, lists ----------------------------------------------------------------

def unquote(name: str) -> list[str]:
    """The parts of a dotted name, without their quotes."""
    parts = re.findall(_IDENT, name)
    return [p[1:-1].replace('""', '"') if p[0] in '`"' else p for p in parts]


def qualify(name: str, database: str, catalog: str | None = None) -> tuple[str, str, str]:
    """(catalog, schema, table) of `name`; the catalog given wins over the name's own."""
    parts = unquote(name)
    table = parts[-1]
    schema = parts[-2] if len(parts) >= 2 else database
    own = parts[-3] if len(parts) == 3 else HIVE
    return catalog or own, schema, table


def quoted(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def string_value(text: str) -> str:
    """The value of a SQL string literal, or the text itself when it is no literal."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at `start`, skipping quoted text."""
    depth, i, quote = 0, start, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced brackets")


def split_top(text: str, sep: str = ",") -> list[str]:
    """`text` split at `sep` outside brackets and quotes, each piece stripped."""
    pieces, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        elif ch == sep and depth == 0:
            pieces.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        pieces.append("".join(current).strip())
    return pieces


def backticks(sql: str) -> str:
    """`` `x` `` as `"x"`, outside string literals."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
                ch = '"' if ch == "`" else ch
        elif ch in "'`":
            quote = ch
            ch = '"' if ch == "`" else ch
        out.append(ch)
    return "".join(out)


def properties(text: str) -> dict[str, str]:
    """`'k'='v', …` or `k = v, …` as a dict, keys lowercased, values as written."""
    result = {}
    for piece in split_top(text):
        key, _, value = piece.partition("=")
        result[string_value(key).lower()] = value.strip()
    return result


# --- types ---------------------------------------------------------------------------------

_SCALARS = {"string": "varchar", "int": "integer", "float": "real", "binary": "varbinary"}


def trino_type(hive: str) -> str:
    """A Hive column type as Trino writes it."""
    t = hive.strip()
    lower = t.lower()
    inner = t[t.find("<") + 1:t.rfind(">")] if "<" in t else ""
    if lower.startswith("array<"):
        return f"array({trino_type(inner)})"
    if lower.startswith("map<"):
        key, value = split_top(inner)
        return f"map({trino_type(key)}, {trino_type(value)})"
    if lower.startswith("struct<"):
        fields = []
        for piece in split_top(inner):
            name, _, kind = piece.partition(":")
            fields.append(f"{quoted(string_value(name.strip('`')))} {trino_type(kind)}")
        return f"row({', '.join(fields)})"
    return _SCALARS.get(lower, lower)


def columns(text: str) -> list[tuple[str, str, str | None]]:
    """(name, Hive type, comment) of each column in a column list's inside."""
    result = []
    for piece in split_top(text):
        match = re.match(rf"({_IDENT})\s+(.*?)(?:\s+comment\s+('(?:[^']|'')*'))?$", piece, _FLAGS)
        if not match:
            raise ValueError(f"cannot read the column {piece!r}")
        result.append((unquote(match.group(1))[0], match.group(2).strip(),
                       string_value(match.group(3)) if match.group(3) else None))
    return result


def column_sql(name: str, hive: str, comment: str | None) -> str:
    return f"{quoted(name)} {trino_type(hive)}" + (f" COMMENT {literal(comment)}" if comment else "")


def transform(spec: str) -> str:
    """An Iceberg partition transform as Trino names it: bucket(n, c) -> bucket(c, n)."""
    match = re.match(r"(bucket|truncate)\s*\(\s*(\d+)\s*,\s*([^)]+?)\s*\)$", spec.strip(), re.I)
    if match:
        return f"{match.group(1).lower()}({unquote(match.group(3))[0]}, {match.group(2)})"
    match = re.match(r"(\w+)\s*\(\s*([^)]+?)\s*\)$", spec.strip())
    if match:
        arguments = [a.strip() if a.strip().isdigit() else unquote(a)[0] for a in match.group(2).split(",")]
        return f"{match.group(1).lower()}({', '.join(arguments)})"
    return unquote(spec)[0]


def transforms_array(text: str) -> str:
    """`ARRAY['bucket(16, id)', …]` with each transform as Trino names it."""
    items = re.findall(r"'((?:[^']|'')*)'", text)
    return "ARRAY[" + ", ".join(literal(transform(i.replace("''", "'"))) for i in items) + "]"


# --- rules ---------------------------------------------------------------------------------

def _create_schema(m: re.Match, database: str, tables: Tables) -> list[Step]:
    schema = unquote(m.group("name"))[-1]
    location = re.search(r"\blocation\s+'((?:[^']|'')*)'", m.group("rest") or "", _FLAGS)
    sql = f"create schema {m.group('ine') or ''}{HIVE}.{quoted(schema)}"
    if location:
        sql += f" with (location = {literal(location.group(1))})"
    return [Step(_spaces(sql))]


def _drop_schema(m: re.Match, database: str, tables: Tables) -> list[Step]:
    schema = unquote(m.group("name"))[-1]
    cascade = (m.group("mode") or "").lower() == "cascade"
    steps = [Step(f"drop table {ICEBERG}.{quoted(schema, t)}") for t in tables.iceberg_tables(schema)] if cascade else []
    steps.append(Step(_spaces(f"drop schema {m.group('ie') or ''}{HIVE}.{quoted(schema)}{' cascade' if cascade else ''}")))
    return steps


def _ctas_match(body: str) -> "_Ctas | None":
    """`create table [if not exists] NAME [with (…)] as …`, the `with` list found by brackets."""
    m = re.match(rf"create\s+table\s+(if\s+not\s+exists\s+)?({NAME})\s*", body, _FLAGS)
    if not m:
        return None
    rest = body[m.end():]
    props = ""
    if re.match(r"with\s*\(", rest, re.I):
        start = rest.index("(")
        end = closing(rest, start)
        props, rest = rest[start + 1:end], rest[end + 1:].lstrip()
    if not re.match(r"as\b", rest, re.I):
        return None
    return _Ctas(m.group(1) or "", m.group(2), props, rest[2:].lstrip())


@dataclass
class _Ctas:
    ine: str
    name: str
    props: str
    query: str


_COMPRESSION = {"none", "snappy", "lz4", "zstd", "gzip"}


def _ctas(body: str, database: str) -> list[Step] | None:
    ctas = _ctas_match(body)
    if ctas is None:
        return None
    props = properties(ctas.props) if ctas.props.strip() else {}
    iceberg = string_value(props.pop("table_type", "'HIVE'")).upper() == "ICEBERG"
    props.pop("is_external", None)
    session = {}
    compression = props.pop("write_compression", None)
    catalog = ICEBERG if iceberg else None
    if compression and string_value(compression).lower() in _COMPRESSION:
        session[f"{ICEBERG if iceberg else HIVE}.compression_codec"] = string_value(compression).upper()
    if iceberg:
        for key in [k for k in props if k.startswith(("vacuum_", "optimize_"))]:
            props.pop(key)
        if "partitioning" in props:
            props["partitioning"] = transforms_array(props["partitioning"])
    elif "field_delimiter" in props:
        props["textfile_field_separator"] = props.pop("field_delimiter")
    target = _target(ctas.name, database, catalog)
    with_clause = f" with ({', '.join(f'{k} = {v}' for k, v in props.items())})" if props else ""
    return [Step(f"create table {ctas.ine}{target}{with_clause} as {ctas.query}", session=session)]


_FORMATS = {"parquet": "PARQUET", "orc": "ORC", "avro": "AVRO", "textfile": "TEXTFILE",
            "jsonfile": "JSON", "rcfile": "RCBINARY", "sequencefile": "SEQUENCEFILE"}


def _storage_format(rest: str) -> str | None:
    stored = re.search(r"\bstored\s+as\s+(inputformat\s+'([^']*)'|\w+)", rest, _FLAGS)
    serde = re.search(r"\brow\s+format\s+serde\s+'([^']*)'", rest, _FLAGS)
    if serde and "json" in serde.group(1).lower():
        return "JSON"
    if serde and "opencsv" in serde.group(1).lower():
        return "CSV"
    if not stored:
        return None
    if stored.group(2):
        klass = stored.group(2).lower()
        known = (("parquet", "PARQUET"), ("orc", "ORC"), ("avro", "AVRO"), ("text", "TEXTFILE"))
        return next((fmt for word, fmt in known if word in klass), None)
    return _FORMATS.get(stored.group(1).lower(), stored.group(1).upper())


def _create_table(m: re.Match, database: str, tables: Tables) -> list[Step] | None:
    body = m.string
    ctas = _ctas(body, database)
    if ctas is not None:
        return ctas
    start = m.end() - 1  # the column list's `(`
    end = closing(body, start)
    cols = columns(body[start + 1:end])
    rest = body[end + 1:]
    tblprops = re.search(r"\btblproperties\s*\(", rest, _FLAGS)
    tprops = {}
    if tblprops:
        open_at = tblprops.end() - 1
        tprops = {k: string_value(v) for k, v in properties(rest[open_at + 1:closing(rest, open_at)]).items()}
        rest = rest[:tblprops.start()]
    iceberg = tprops.get("table_type", "").upper() == "ICEBERG"
    partitions: list[str] = []
    with_props: list[str] = []
    parted = re.search(r"\bpartitioned\s+by\s*\(", rest, _FLAGS)
    if parted:
        open_at = parted.end() - 1
        for piece in split_top(rest[open_at + 1:closing(rest, open_at)]):
            typed = re.match(rf"({_IDENT})\s+(\w.*?)(?:\s+comment\s+('(?:[^']|'')*'))?$", piece, _FLAGS)
            if typed and "(" not in piece.split()[0]:
                name = unquote(typed.group(1))[0]
                cols.append((name, typed.group(2), string_value(typed.group(3)) if typed.group(3) else None))
                partitions.append(name)
            else:
                partitions.append(transform(piece) if iceberg else unquote(piece)[0])
    location = re.search(r"\blocation\s+'((?:[^']|'')*)'", rest, _FLAGS)
    comment = re.match(r"\s*comment\s+('(?:[^']|'')*')", rest, _FLAGS)
    if iceberg:
        if location:
            with_props.append(f"location = {literal(location.group(1))}")
        if tprops.get("format"):
            with_props.append(f"format = {literal(tprops['format'].upper())}")
        if partitions:
            with_props.append(f"partitioning = ARRAY[{', '.join(literal(p) for p in partitions)}]")
    else:
        if location:
            with_props.append(f"external_location = {literal(location.group(1))}")
        fmt = _storage_format(rest)
        if fmt:
            with_props.append(f"format = {literal(fmt)}")
        if partitions:
            with_props.append(f"partitioned_by = ARRAY[{', '.join(literal(p) for p in partitions)}]")
        clustered = re.search(r"\bclustered\s+by\s*\(([^)]*)\)\s*into\s+(\d+)\s+buckets", rest, _FLAGS)
        if clustered:
            names = [unquote(c)[0] for c in split_top(clustered.group(1))]
            with_props.append(f"bucketed_by = ARRAY[{', '.join(literal(n) for n in names)}]")
            with_props.append(f"bucket_count = {clustered.group(2)}")
        delimiter = re.search(r"\bfields\s+terminated\s+by\s+'((?:[^']|'')*)'", rest, _FLAGS)
        if delimiter:
            with_props.append(f"textfile_field_separator = {literal(delimiter.group(1))}")
        if tprops.get("skip.header.line.count"):
            with_props.append(f"skip_header_line_count = {int(tprops['skip.header.line.count'])}")
    target = _target(m.group("name"), database, ICEBERG if iceberg else None)
    sql = f"create table {m.group('ine') or ''}{target} ({', '.join(column_sql(*c) for c in cols)})"
    if comment:
        sql += f" COMMENT {comment.group(1)}"
    if with_props:
        sql += f" with ({', '.join(with_props)})"
    return [Step(_spaces(sql))]


def _alter_table(m: re.Match, database: str, tables: Tables) -> list[Step] | None:
    catalog, schema, table = qualify(m.group("name"), database)
    action = m.group("action").strip()
    target = f"{catalog}.{quoted(schema, table)}"

    add = re.match(r"add\s+columns\s*\((.*)\)\s*$", action, _FLAGS)
    if add:
        return [Step(f"alter table {target} add column {column_sql(*c)}") for c in columns(add.group(1))]

    change = re.match(rf"change\s+(?:column\s+)?({_IDENT})\s+({_IDENT})\s+(.*?)"
                      rf"(?:\s+comment\s+('(?:[^']|'')*'))?(?:\s+(?:first|after\s+{_IDENT}))?\s*$", action, _FLAGS)
    if change:
        old, new = unquote(change.group(1))[0], unquote(change.group(2))[0]
        hive_type = change.group(3).strip()
        if tables.is_iceberg(schema, table):
            steps = []
            if old.lower() != new.lower():
                steps.append(Step(f"alter table {target} rename column {quoted(old)} to {quoted(new)}"))
            steps.append(Step(f"alter table {target} alter column {quoted(new)} set data type {trino_type(hive_type)}"))
            return steps
        comment = string_value(change.group(4)) if change.group(4) else None
        return [Step(glue=lambda glue: glue.change_column(schema, table, old, new, hive_type.lower(), comment),
                     describe=f"change column {old} of {schema}.{table} to {new} {hive_type.lower()}")]

    rename = re.match(rf"rename\s+to\s+({NAME})\s*$", action, _FLAGS)
    if rename:
        new_catalog, new_schema, new_table = qualify(rename.group(1), schema)
        if tables.is_iceberg(schema, table):
            return [Step(f"alter table {ICEBERG}.{quoted(schema, table)} rename to {ICEBERG}.{quoted(new_schema, new_table)}")]
        return [Step(f"alter table {target} rename to {new_catalog}.{quoted(new_schema, new_table)}")]

    add_partition = re.match(r"add\s+(if\s+not\s+exists\s+)?(partition\s*\(.*)$", action, _FLAGS)
    if add_partition:
        steps = []
        for spec, location in _partitions(add_partition.group(2)):
            keys, values = _partition_arrays(spec)
            if location is None:
                sql = f"call {catalog}.system.create_empty_partition({literal(schema)}, {literal(table)}, {keys}, {values})"
            else:
                sql = (f"call {catalog}.system.register_partition({literal(schema)}, {literal(table)}, "
                       f"{keys}, {values}, {literal(location)})")
            steps.append(Step(sql, ignore="ALREADY_EXISTS" if add_partition.group(1) else None))
        return steps

    drop_partition = re.match(r"drop\s+(if\s+exists\s+)?(partition\s*\(.*)$", action, _FLAGS)
    if drop_partition:
        steps = []
        for spec, _ in _partitions(drop_partition.group(2)):
            keys, values = _partition_arrays(spec)
            sql = f"call {catalog}.system.unregister_partition({literal(schema)}, {literal(table)}, {keys}, {values})"
            steps.append(Step(sql, ignore="NOT_FOUND" if drop_partition.group(1) else None))
        return steps
    return None


def _partitions(text: str) -> list[tuple[str, str | None]]:
    """Each `partition (…) [location '…']` in `text`, as (inside of the brackets, location)."""
    found = []
    for match in re.finditer(r"partition\s*\(", text, re.I):
        start = match.end() - 1
        end = closing(text, start)
        location = re.match(r"\s*location\s+'((?:[^']|'')*)'", text[end + 1:], _FLAGS)
        found.append((text[start + 1:end], location.group(1).replace("''", "'") if location else None))
    return found


def _partition_arrays(spec: str) -> tuple[str, str]:
    pairs = [piece.split("=", 1) for piece in split_top(spec)]
    keys = ", ".join(literal(unquote(k.strip())[0]) for k, _ in pairs)
    values = ", ".join(literal(string_value(v)) for _, v in pairs)
    return f"ARRAY[{keys}]", f"ARRAY[{values}]"


def _drop_table(m: re.Match, database: str, tables: Tables) -> list[Step]:
    return [Step(_spaces(f"drop {m.group('kind').lower()} {m.group('ie') or ''}{_target(m.group('name'), database)}"))]


def _msck(m: re.Match, database: str, tables: Tables) -> list[Step]:
    catalog, schema, table = qualify(m.group("name"), database)
    return [Step(f"call {catalog}.system.sync_partition_metadata({literal(schema)}, {literal(table)}, 'ADD')")]


def _show_tables(m: re.Match, database: str, tables: Tables) -> list[Step]:
    schema = unquote(m.group("name"))[-1] if m.group("name") else database
    sql = f"show tables from {HIVE}.{quoted(schema)}"
    if m.group("pattern"):
        sql += f" like {literal(string_value(m.group('pattern')).replace('*', '%'))}"
    return [Step(sql, labels=["tab_name"])]


def _show_schemas(m: re.Match, database: str, tables: Tables) -> list[Step]:
    sql = f"show schemas from {HIVE}"
    if m.group("pattern"):
        sql += f" like {literal(string_value(m.group('pattern')).replace('*', '%'))}"
    return [Step(sql, labels=["database_name"])]


def _show_columns(m: re.Match, database: str, tables: Tables) -> list[Step]:
    catalog, schema, table = qualify(m.group("name"), database)
    return [Step(f"select column_name from {catalog}.information_schema.columns where table_schema = {literal(schema.lower())} "
                 f"and table_name = {literal(table.lower())} order by ordinal_position", labels=["field"])]


def _describe(m: re.Match, database: str, tables: Tables) -> list[Step]:
    return [Step(f"describe {_target(m.group('name'), database)}")]


def _show_create(m: re.Match, database: str, tables: Tables) -> list[Step]:
    return [Step(f"show create {m.group('kind').lower()} {_target(m.group('name'), database)}")]


def _show_tblproperties(m: re.Match, database: str, tables: Tables) -> list[Step]:
    catalog, schema, table = qualify(m.group("name"), database)
    return [Step(f"select * from {catalog}.{quoted(schema, table + '$properties')}")]


def _target(name: str, database: str, catalog: str | None = None) -> str:
    catalog, schema, table = qualify(name, database, catalog)
    return f"{catalog}.{quoted(schema, table)}"


def _spaces(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


_RULES: list[tuple[str, Callable[[re.Match, str, Tables], list[Step] | None]]] = [
    (rf"create\s+(?:database|schema)\s+(?P<ine>if\s+not\s+exists\s+)?(?P<name>{NAME})(?P<rest>.*)$", _create_schema),
    (rf"drop\s+(?:database|schema)\s+(?P<ie>if\s+exists\s+)?(?P<name>{NAME})(?:\s+(?P<mode>cascade|restrict))?\s*$",
     _drop_schema),
    (rf"create\s+(?:external\s+)?table\s+(?P<ine>if\s+not\s+exists\s+)?(?P<name>{NAME})\s*\(", _create_table),
    (rf"create\s+table\s+(?:if\s+not\s+exists\s+)?{NAME}\s*(?:with\b|as\b)", lambda m, d, t: _ctas(m.string, d)),
    (rf"alter\s+table\s+(?P<name>{NAME})\s+(?P<action>.*)$", _alter_table),
    (rf"drop\s+(?P<kind>table|view)\s+(?P<ie>if\s+exists\s+)?(?P<name>{NAME})(?:\s+purge)?\s*$", _drop_table),
    (rf"msck\s+repair\s+table\s+(?P<name>{NAME})\s*$", _msck),
    (rf"show\s+tables(?:\s+(?:in|from)\s+(?P<name>{NAME}))?(?:\s+(?:like\s+)?(?P<pattern>'[^']*'))?\s*$", _show_tables),
    (r"show\s+(?:databases|schemas)(?:\s+(?:like\s+)?(?P<pattern>'[^']*'))?\s*$", _show_schemas),
    (rf"show\s+columns\s+(?:in|from)\s+(?P<name>{NAME})\s*$", _show_columns),
    (rf"(?:describe|desc)\s+(?:formatted\s+|extended\s+)?(?P<name>{NAME})\s*$", _describe),
    (rf"show\s+create\s+(?P<kind>table|view)\s+(?P<name>{NAME})\s*$", _show_create),
    (rf"show\s+tblproperties\s+(?P<name>{NAME})\s*$", _show_tblproperties),
]


# --- self-test -----------------------------------------------------------------------------

class _FakeTables:
    def is_iceberg(self, schema: str, table: str) -> bool:
        return table.startswith("ice")

    def iceberg_tables(self, schema: str) -> list[str]:
        return ["ice_a"]


_CASES = [
    ("select 1;", ["select 1"]),
    ("-- hi\nselect * from \"awsdatacatalog\".\"s\".\"t\"", ["-- hi\nselect * from \"awsdatacatalog\".\"s\".\"t\""]),
    ("create database if not exists `s` location 's3://b/s/'",
     ["create schema if not exists awsdatacatalog.\"s\" with (location = 's3://b/s/')"]),
    ("create schema s", ["create schema awsdatacatalog.\"s\""]),
    ("drop database if exists `s` cascade",
     ["drop table iceberg.\"s\".\"ice_a\"", "drop schema if exists awsdatacatalog.\"s\" cascade"]),
    ("drop schema s", ["drop schema awsdatacatalog.\"s\""]),
    ("create external table `s`.`t` (`c1` string, c2 int comment 'x', c3 float, c4 array<string>, "
     "c5 map<string,int>, c6 struct<a:int,b:string>, c7 decimal(10,2)) partitioned by (`day` string) "
     "stored as parquet location 's3://b/t/' tblproperties ('parquet.compression'='SNAPPY')",
     ["create table awsdatacatalog.\"s\".\"t\" (\"c1\" varchar, \"c2\" integer COMMENT 'x', \"c3\" real, "
      "\"c4\" array(varchar), \"c5\" map(varchar, integer), \"c6\" row(\"a\" integer, \"b\" varchar), "
      "\"c7\" decimal(10,2), \"day\" varchar) with (external_location = 's3://b/t/', format = 'PARQUET', "
      "partitioned_by = ARRAY['day'])"]),
    ("create external table if not exists t (a string) row format delimited fields terminated by ',' "
     "stored as textfile location 's3://b/t/' tblproperties ('skip.header.line.count'='1')",
     ["create table if not exists awsdatacatalog.\"db\".\"t\" (\"a\" varchar) with (external_location = 's3://b/t/', "
      "format = 'TEXTFILE', textfile_field_separator = ',', skip_header_line_count = 1)"]),
    ("create table `s`.`t` (id bigint, ts timestamp, name string) partitioned by (day(ts), bucket(16, id)) "
     "location 's3://b/t/' tblproperties ('table_type'='ICEBERG', 'format'='parquet')",
     ["create table iceberg.\"s\".\"t\" (\"id\" bigint, \"ts\" timestamp, \"name\" varchar) with "
      "(location = 's3://b/t/', format = 'PARQUET', partitioning = ARRAY['day(ts)', 'bucket(id, 16)'])"]),
    ("create table \"awsdatacatalog\".\"s\".\"t\" with (table_type='ICEBERG', is_external=false, "
     "location='s3://b/t/', partitioning=ARRAY['day'], format='PARQUET', write_compression='ZSTD') as select 1 as day",
     ["create table iceberg.\"s\".\"t\" with (location = 's3://b/t/', partitioning = ARRAY['day'], "
      "format = 'PARQUET') as select 1 as day"]),
    ("create table s.t with (external_location='s3://b/t/', partitioned_by=ARRAY['d'], format='PARQUET', "
     "write_compression='SNAPPY', field_delimiter=',') as select 1 as x, 'a' as d",
     ["create table awsdatacatalog.\"s\".\"t\" with (external_location = 's3://b/t/', partitioned_by = ARRAY['d'], "
      "format = 'PARQUET', textfile_field_separator = ',') as select 1 as x, 'a' as d"]),
    ("create table t as select 1", ["create table awsdatacatalog.\"db\".\"t\" as select 1"]),
    ("alter table `s`.`t` add columns (a string, `b` int)",
     ["alter table awsdatacatalog.\"s\".\"t\" add column \"a\" varchar",
      "alter table awsdatacatalog.\"s\".\"t\" add column \"b\" integer"]),
    ("alter table s.ice_t change column a a bigint",
     ["alter table awsdatacatalog.\"s\".\"ice_t\" alter column \"a\" set data type bigint"]),
    ("alter table s.ice_t change a b string",
     ["alter table awsdatacatalog.\"s\".\"ice_t\" rename column \"a\" to \"b\"",
      "alter table awsdatacatalog.\"s\".\"ice_t\" alter column \"b\" set data type varchar"]),
    ("alter table `s`.`t` change column `a` `a` bigint", ["(glue) change column a of s.t to a bigint"]),
    ("alter table `s`.`ice_t` rename to `s`.`ice_u`",
     ["alter table iceberg.\"s\".\"ice_t\" rename to iceberg.\"s\".\"ice_u\""]),
    ("alter table `s`.`t` rename to `u`", ["alter table awsdatacatalog.\"s\".\"t\" rename to awsdatacatalog.\"s\".\"u\""]),
    ("alter table t add if not exists partition (k='v', n=1) location 's3://b/t/k=v/n=1/' partition (k='w', n=2)",
     ["call awsdatacatalog.system.register_partition('db', 't', ARRAY['k', 'n'], ARRAY['v', '1'], 's3://b/t/k=v/n=1/')",
      "call awsdatacatalog.system.create_empty_partition('db', 't', ARRAY['k', 'n'], ARRAY['w', '2'])"]),
    ("alter table s.t drop if exists partition (k='v')",
     ["call awsdatacatalog.system.unregister_partition('s', 't', ARRAY['k'], ARRAY['v'])"]),
    ("drop table if exists `s`.`t`", ["drop table if exists awsdatacatalog.\"s\".\"t\""]),
    ("drop view s.v", ["drop view awsdatacatalog.\"s\".\"v\""]),
    ("msck repair table `s`.`t`", ["call awsdatacatalog.system.sync_partition_metadata('s', 't', 'ADD')"]),
    ("show tables in `s` 'ev*'", ["show tables from awsdatacatalog.\"s\" like 'ev%'"]),
    ("show tables", ["show tables from awsdatacatalog.\"db\""]),
    ("show databases", ["show schemas from awsdatacatalog"]),
    ("describe `s`.`t`", ["describe awsdatacatalog.\"s\".\"t\""]),
    ("show columns in s.t", ["select column_name from awsdatacatalog.information_schema.columns where "
                              "table_schema = 's' and table_name = 't' order by ordinal_position"]),
    ("show create table `s`.`t`", ["show create table awsdatacatalog.\"s\".\"t\""]),
    ("alter table `s`.`t` set tblproperties ('a'='b')", ["alter table \"s\".\"t\" set tblproperties ('a'='b')"]),
]

_TYPES = [
    ("select 1", "DML"), ("create table t as select 1", "DML"), ("create external table t (a int)", "DDL"),
    ("show tables", "UTILITY"), ("describe t", "UTILITY"), ("drop table t", "DDL"), ("insert into t select 1", "DML"),
    ("create view v as select 1", "DDL"), ("/* x */ with a as (select 1) select * from a", "DML"),
]


def _self_test() -> None:
    failures = 0
    for sql, expected in _CASES:
        got = [step.text() for step in translate(sql, "db", _FakeTables())]
        if got != expected:
            failures += 1
            print(f"FAIL {sql!r}\n  expected {expected}\n  got      {got}")
    for sql, expected in _TYPES:
        if statement_type(sql) != expected:
            failures += 1
            print(f"FAIL statement_type({sql!r}) = {statement_type(sql)}, expected {expected}")
    assert writes("merge into t using s on true when matched then delete") and not writes("select 1")
    assert written_table("insert into \"s\".\"t\" select 1") == "s.t"
    total = len(_CASES) + len(_TYPES)
    print(f"{total - failures} passed, {failures} failed")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    _self_test()
