"""Redshift's SQL on PostgreSQL: what both fronts of the stand-in do to every statement.

`translate` splits what a client sent into statements and, for each, either rewrites it into
PostgreSQL (Redshift-only table attributes dropped, `varchar(max)` widened, Redshift's catalog
names pointed at the `standin` schema), refuses it with the error Redshift gives, or recognises
a `COPY … FROM 's3://…'` for the front to load. It only reads text: it never talks to
PostgreSQL or S3, so both fronts share it and it stays fast (the proxy calls it on every query).

The rewrites run on a masked copy of the text in which string literals, comments and unusual
quoted names are replaced by markers, so `'getdate()'` inside a literal stays as written.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Redshift's own wording for 1023, from AWS's troubleshooting guide; the numbers are made up.
ERROR_1023_DETAIL = (
    "Serializable isolation violation on table - 100044, "
    "transactions forming the cycle are: 2431, 2432 (pid:19234)"
)


@dataclass
class RedshiftError(Exception):
    """An error as Redshift would raise it: the wire front has PostgreSQL raise it, so the
    session's transaction ends up as after any other error; the Data API reports it."""

    sqlstate: str
    message: str
    detail: str = ""

    def sql(self) -> str:
        """A statement that makes PostgreSQL raise this error."""
        args = ", ".join(quote_literal(a) for a in (self.sqlstate, self.message, self.detail))
        return f"select standin.raise_error({args})"


def error_1023() -> RedshiftError:
    return RedshiftError("XX000", "1023", ERROR_1023_DETAIL)


def load_failure(table: str, reason: str) -> RedshiftError:
    """A COPY whose data PostgreSQL rejected, worded as Redshift words a failed load."""
    name = table.split(".")[-1].strip('"')
    detail = (
        "\n  -----------------------------------------------\n"
        f"  error:  {reason}\n"
        "  -----------------------------------------------"
    )
    return RedshiftError(
        "XX000",
        f"Load into table '{name}' failed.  Check 'stl_load_errors' system table for details.",
        detail,
    )


@dataclass(frozen=True)
class CopyFromS3:
    """A Redshift `COPY <table> [(columns)] FROM 's3://…' …`, for a front to load."""

    table: str
    columns: str  # the column list as written, parentheses included, or ""
    url: str
    format: str  # "csv", "parquet" or "text" (Redshift's default: delimited, no quoting)
    delimiter: str
    quote: str
    ignore_header: int
    empty_as_null: bool
    blanks_as_null: bool
    null_as: str

    def probe_sql(self) -> str:
        """Selects no rows but tells the target columns' names and types, in load order."""
        columns = self.columns[1:-1] if self.columns else "*"
        return f"select {columns} from {self.table} limit 0"

    def copy_sql(self) -> str:
        """Loads what `s3copy.load` made: CSV where only an unquoted empty field is NULL."""
        return f"copy {self.table} {self.columns} from stdin with (format csv)"


@dataclass(frozen=True)
class Statement:
    """One statement as the client wrote it, and what to do with it: exactly one of
    `sql` (run this PostgreSQL), `error` (refuse) or `copy` (load from S3)."""

    original: str
    sql: str | None = None
    error: RedshiftError | None = None
    copy: CopyFromS3 | None = None

    def refused(self, error: RedshiftError) -> Statement:
        return Statement(self.original, error=error)

    def text(self) -> str:
        """What PostgreSQL runs for a statement that is not a COPY from S3."""
        return self.error.sql() if self.error else self.sql


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# Anything a rewrite must not look inside.
_OPAQUE = re.compile(
    r"""
      (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'          # escape string
    | '[^']*(?:''[^']*)*'                          # string
    | \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$  # dollar-quoted string
    | "[^"]*(?:""[^"]*)*"                          # quoted name
    | --[^\n]*                                     # comments
    | /\*.*?\*/
    """,
    re.S | re.X,
)
# A quoted name that is also a plain word stays visible: `distkey ("a")` must still match.
_PLAIN_NAME = re.compile(r'"[A-Za-z_][\w$]*"')
# Markers: \x00n\x00 for literals and names, \x01n\x01 for comments.
_MARKER = re.compile(r"[\x00\x01](\d+)[\x00\x01]")
_COMMENT_MARKER = re.compile(r"\x01\d+\x01")
# Words that any rewrite or refusal needs: a statement without one is passed on untouched.
_INTERESTING = re.compile(
    r"diststyle|distkey|sortkey|backup|encode|binding|max\s*\)|svv_|getdate|late_binding"
    r"|advisory|copy|index|alter|generate_series",
    re.I,
)

_DROPPED = re.compile(
    r"""
      \bdiststyle\s+(?:auto|even|all|key)\b
    | \bdistkey\s*\([^()]*\)
    | \b(?:compound\s+|interleaved\s+)?sortkey\s*\([^()]*\)
    | \bsortkey\s+auto\b
    | \bbackup\s+(?:yes|no)\b
    | \bencode\s+(?:raw|az64|bytedict|delta|delta32k|lzo|mostly8|mostly16|mostly32
                  |runlength|text255|text32k|zstd|auto)\b
    | \bwith\s+no\s+schema\s+binding\b
    | \b(?:distkey|sortkey)\b     # column attributes: `id int distkey sortkey`
    """,
    re.I | re.X,
)
_VARCHAR_MAX = re.compile(r"\b(?:n?varchar|character\s+varying)\s*\(\s*max\s*\)", re.I)
# Redshift's catalog objects, bare or `pg_catalog.`-qualified, and not after a dot, so
# `standin.svv_tables` and `t.getdate` stay as they are.
_CATALOG_FUNCTION = re.compile(
    r'(?<![\w$."])(?:"?pg_catalog"?\s*\.\s*)?"?\b(getdate|pg_get_late_binding_view_cols)\b"?(?=\s*\()',
    re.I,
)
_CATALOG_RELATION = re.compile(
    r'(?<![\w$."])(?:"?pg_catalog"?\s*\.\s*)?"?\b(svv_tables|svv_columns)\b"?(?![\w$]|\s*\()',
    re.I,
)
_ADVISORY = re.compile(r"\b(pg_(?:try_)?advisory_(?:xact_)?(?:un)?lock(?:_shared|_all)?)\s*\(", re.I)
_CREATE_INDEX = re.compile(r"create\s+(?:unique\s+)?index\b", re.I)
_ALTER_TYPE = re.compile(
    r"alter\s+table\b.*\balter\s+(?:column\s+)?\S+\s+(?:set\s+data\s+)?type\b", re.I | re.S
)
# Leader-node-only functions: a query may call them, a statement that writes a table may not.
_LEADER_ONLY = re.compile(r"\bgenerate_series\s*\(", re.I)
_WRITES_TABLE = re.compile(r"(?:create\s+(?:temp\w*\s+)?table\b.*\bas\b|insert\s+into\b)", re.I | re.S)
_BEGIN = re.compile(r"(?:begin|start\s+transaction)\b", re.I)
_END = re.compile(r"(?:commit|end|abort)\b|rollback\b(?!\s+(?:work\s+|transaction\s+)?to\b)", re.I)
_FROM_STDIN = re.compile(r"\bfrom\s+(stdin)\b", re.I)
_NAME = r'(?:[A-Za-z_][\w$]*|"[^"]*"|\x00\d+\x00)'
_COPY_S3 = re.compile(
    rf"copy\s+(?P<table>{_NAME}(?:\s*\.\s*{_NAME})*)\s*(?P<columns>\([^()]*\))?"
    r"\s*from\s+(?P<source>\x00\d+\x00)(?P<options>.*)",
    re.I | re.S,
)


def translate(text: str, in_transaction: bool) -> list[Statement]:
    """The statements in `text`, each with what to do with it. `in_transaction` says whether
    a transaction block is open before the first one; `begin`/`commit` in `text` move it."""
    if not _INTERESTING.search(text):
        return [Statement(s.strip(), sql=s.strip()) for s in _split_plain(text)]
    masked, pieces = _mask(text)
    statements = []
    for part in masked.split(";"):
        head = _COMMENT_MARKER.sub(" ", part).strip()
        if not head:
            continue
        original = _unmask(part, pieces).strip()
        statements.append(_translate_one(original, part, head, pieces, in_transaction))
        if _BEGIN.match(head):
            in_transaction = True
        elif _END.match(head):
            in_transaction = False
    return statements


def _split_plain(text: str) -> list[str]:
    """Splits on `;` when nothing needs rewriting; only a text with no quotes or comments can
    be split without masking."""
    if not any(c in text for c in "'\"$-/"):
        return [s for s in text.split(";") if s.strip()]
    masked, pieces = _mask(text)
    return [
        _unmask(part, pieces)
        for part in masked.split(";")
        if _COMMENT_MARKER.sub(" ", part).strip()
    ]


def _translate_one(
    original: str, masked: str, head: str, pieces: list[str], in_transaction: bool
) -> Statement:
    statement = Statement(original)
    if re.match(r"copy\b", head, re.I):
        if stdin := _FROM_STDIN.search(head):
            # Redshift's parser has no `FROM STDIN`.
            return statement.refused(
                RedshiftError("42601", f'syntax error at or near "{stdin.group(1)}"')
            )
        if copy := _COPY_S3.match(head):
            source = _literal(_unmask(copy["source"], pieces))
            if source.startswith("s3://"):
                try:
                    return Statement(original, copy=_copy_from_s3(copy, source, pieces))
                except RedshiftError as error:
                    return statement.refused(error)
    if _CREATE_INDEX.match(head):
        # Wording from Redshift, which quotes the whole statement back.
        return statement.refused(
            RedshiftError("0A000", f'SQL command "{original}" not supported on Redshift tables.')
        )
    if advisory := _ADVISORY.search(masked):
        # Redshift has no advisory locks; the argument type is a guess (strata passes a bigint).
        name = advisory.group(1).lower()
        return statement.refused(RedshiftError("42883", f"function {name}(bigint) does not exist"))
    if _WRITES_TABLE.match(head) and _LEADER_ONLY.search(masked):
        return statement.refused(
            RedshiftError(
                "0A000",
                "Specified types or functions (one per INFO message) not supported on Redshift tables.",
            )
        )
    if in_transaction and _ALTER_TYPE.match(head):
        return statement.refused(
            RedshiftError("25001", "ALTER TABLE ALTER COLUMN cannot run inside a transaction block")
        )
    rewritten = _DROPPED.sub("", masked)
    rewritten = _VARCHAR_MAX.sub("varchar(65535)", rewritten)
    rewritten = _CATALOG_FUNCTION.sub(lambda m: "standin." + m.group(1).lower(), rewritten)
    rewritten = _CATALOG_RELATION.sub(lambda m: "standin." + m.group(1).lower(), rewritten)
    return Statement(original, sql=_unmask(rewritten, pieces).strip())


def _mask(text: str) -> tuple[str, list[str]]:
    pieces: list[str] = []

    def hide(match: re.Match[str]) -> str:
        token = match.group()
        if _PLAIN_NAME.fullmatch(token):
            return token
        pieces.append(token)
        marker = "\x01" if token.startswith(("--", "/*")) else "\x00"
        return f"{marker}{len(pieces) - 1}{marker}"

    return _OPAQUE.sub(hide, text), pieces


def _unmask(masked: str, pieces: list[str]) -> str:
    return _MARKER.sub(lambda m: pieces[int(m.group(1))], masked)


def _literal(token: str) -> str:
    """The value of a plain `'…'` string literal; other tokens as they are."""
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1].replace("''", "'")
    return token


# COPY parameters that change nothing here: authorization and region (moto checks neither),
# and the date/time formats (PostgreSQL reads the ISO forms `auto` covers).
_IGNORED_WITH_VALUE = {
    "iam_role", "credentials", "access_key_id", "secret_access_key", "session_token",
    "region", "dateformat", "timeformat", "compupdate", "statupdate", "maxerror",
}
# ACCEPTINVCHARS's optional replacement character is a literal, which the loop skips.
_IGNORED_FLAGS = {"truncatecolumns", "trimblanks", "acceptanydate", "acceptinvchars"}


def _copy_from_s3(match: re.Match[str], url: str, pieces: list[str]) -> CopyFromS3:
    tokens = iter(re.findall(r"\x00\d+\x00|[^\s\x00]+", match["options"]))

    def value() -> str:
        token = next(tokens, "")
        if token.lower() == "as":
            token = next(tokens, "")
        return _literal(_unmask(token, pieces))

    options = {"format": "text", "delimiter": None, "quote": '"', "ignoreheader": "0",
               "null": "\\N", "emptyasnull": False, "blanksasnull": False}
    for token in tokens:
        word = token.lower()
        if word in ("csv", "parquet"):
            options["format"] = word
        elif word == "format":
            options["format"] = value().lower()
        elif word in ("delimiter", "quote", "ignoreheader", "null"):
            options[word] = value()
        elif word in ("emptyasnull", "blanksasnull"):
            options[word] = True
        elif word in _IGNORED_WITH_VALUE:
            value()
        elif word not in _IGNORED_FLAGS and word != "as" and not word.startswith("\x00"):
            raise RedshiftError("0A000", f"the Redshift stand-in does not support COPY option {token}")
    if options["format"] not in ("csv", "parquet", "text"):
        raise RedshiftError("0A000", f"the Redshift stand-in does not support COPY format {options['format']}")
    if not options["ignoreheader"].isdigit():
        raise RedshiftError("42601", f"IGNOREHEADER takes a number of lines, not {options['ignoreheader']}")
    table = _unmask(match["table"], pieces)
    return CopyFromS3(
        table=table,
        columns=_unmask(match["columns"] or "", pieces),
        url=url,
        format=options["format"],
        delimiter=options["delimiter"] or ("," if options["format"] == "csv" else "|"),
        quote=options["quote"],
        ignore_header=int(options["ignoreheader"]),
        empty_as_null=options["emptyasnull"],
        blanks_as_null=options["blanksasnull"],
        null_as=options["null"],
    )


# What both fronts create in each database on first use (see `shared.ensure_catalog`): the
# function refusals raise through, and Redshift's catalog objects over PostgreSQL's. Column
# names and types follow Redshift's documentation of SVV_TABLES and SVV_COLUMNS.
CATALOG_SQL = """
create schema standin;

create function standin.raise_error(state text, message text, detail text) returns void
language plpgsql as $$
begin
    if detail = '' then
        raise exception using errcode = state, message = message;
    end if;
    raise exception using errcode = state, message = message, detail = detail;
end
$$;

-- Redshift's GETDATE: the statement's start in the session's time zone, to the second.
create function standin.getdate() returns timestamp
language sql stable as $$ select date_trunc('second', statement_timestamp())::timestamp $$;

create view standin.svv_tables as
select table_catalog::text, table_schema::text, table_name::text, table_type::text,
       null::text as remarks
from information_schema.tables
where table_schema not in ('pg_catalog', 'information_schema', 'standin')
  and table_type in ('BASE TABLE', 'VIEW');

create view standin.svv_columns as
select table_catalog::text, table_schema::text, table_name::text, column_name::text,
       ordinal_position::int, column_default::text, is_nullable::text, data_type::text,
       character_maximum_length::int, numeric_precision::int, numeric_precision_radix::int,
       numeric_scale::int, datetime_precision::int, interval_type::text,
       interval_precision::text, character_set_catalog::text, character_set_schema::text,
       character_set_name::text, collation_catalog::text, collation_schema::text,
       collation_name::text, domain_name::text, null::text as remarks
from information_schema.columns
where table_schema not in ('pg_catalog', 'information_schema', 'standin');

-- Like Redshift's, it returns `record`: callers name the columns, e.g.
-- `cols(view_schema name, view_name name, col_name name, col_type varchar, col_num int)`.
-- Every PostgreSQL view binds to its tables, so it lists all views.
create function standin.pg_get_late_binding_view_cols() returns setof record
language sql stable as $$
    select n.nspname, c.relname, a.attname,
           format_type(a.atttypid, a.atttypmod)::varchar, a.attnum::int
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relkind = 'v'
      and n.nspname not in ('pg_catalog', 'information_schema', 'standin')
    order by 1, 2, 5
$$;
"""

# Marks a database's `standin` schema as made by this CATALOG_SQL; any change remakes it.
CATALOG_VERSION = "strata stand-in " + hashlib.sha256(CATALOG_SQL.encode()).hexdigest()[:16]
