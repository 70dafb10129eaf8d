"""Trino's result columns and values as Athena's GetQueryResults shows them: ColumnInfo with
Athena's type names (the base name: `varchar`, `decimal`, `array` …, with precision and scale
apart) and every value as text, NULL as a `Data` entry without `VarCharValue`.

Values print as Athena prints them: booleans `true`/`false`, numbers as Trino wrote them,
dates `2024-01-01`, timestamps `2024-01-01 00:00:00.000`, arrays `[1, 2]`, maps and rows
`{a=1, b=x}`, varbinary as spaced hex bytes.

`python3 results.py` runs the self-test at the bottom.
"""

from __future__ import annotations

import base64

# Athena's name for a Trino type where the two differ.
_NAMES = {"real": "float"}

# Precision for types without parameters, as Athena reports it (JDBC's column sizes).
_PRECISION = {
    "boolean": 0, "tinyint": 3, "smallint": 5, "integer": 10, "bigint": 19, "real": 7, "double": 17,
    "date": 0, "timestamp": 3, "timestamp with time zone": 3, "time": 3, "varchar": 2147483647,
    "varbinary": 2147483647, "json": 2147483647,
}
_CASE_SENSITIVE = {"varchar", "char", "json"}


def column_info(column: dict, label: str | None = None) -> dict:
    """Athena's ColumnInfo for a Trino column document."""
    signature = column.get("typeSignature") or {"rawType": column["type"], "arguments": []}
    raw = signature["rawType"]
    numbers = [a["value"] for a in signature.get("arguments", []) if a.get("kind") == "LONG"]
    precision, scale = _PRECISION.get(raw, 0), 0
    if raw == "decimal" and len(numbers) == 2:
        precision, scale = numbers
    elif raw in ("varchar", "char") and numbers:
        precision = numbers[0]
    name = label or column["name"]
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": _NAMES.get(raw, raw),
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": raw in _CASE_SENSITIVE,
    }


def datum(value, signature: dict) -> dict:
    """One value as a GetQueryResults `Data` entry."""
    return {} if value is None else {"VarCharValue": text(value, signature)}


def text(value, signature: dict) -> str:
    """`value` (as Trino's JSON has it) printed as Athena prints it."""
    raw = signature.get("rawType", "")
    arguments = signature.get("arguments", [])
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if raw == "varbinary":
        return base64.b64decode(value).hex(" ")
    if raw == "array":
        inner = arguments[0]["value"] if arguments else {}
        return "[" + ", ".join(text(v, inner) for v in value) + "]"
    if raw == "map":
        key_type, value_type = (a["value"] for a in arguments)
        return "{" + ", ".join(f"{text(k, key_type)}={text(v, value_type)}" for k, v in value.items()) + "}"
    if raw == "row":
        fields = [a["value"] for a in arguments]
        names = [f.get("fieldName", {}).get("name", f"field{i}") for i, f in enumerate(fields)]
        return "{" + ", ".join(f"{n}={text(v, f['typeSignature'])}" for n, v, f in zip(names, value, fields)) + "}"
    return str(value)


def _self_test() -> None:
    def sig(raw, *arguments):
        return {"rawType": raw, "arguments": list(arguments)}

    integer = sig("integer")
    cases = [
        (text(True, sig("boolean")), "true"),
        (text("1.0E10", sig("double")), "1.0E10"),
        (text("2024-01-01 00:00:00.000", sig("timestamp")), "2024-01-01 00:00:00.000"),
        (text([1, None], sig("array", {"kind": "TYPE", "value": integer})), "[1, null]"),
        (text({"a": 1}, sig("map", {"kind": "TYPE", "value": sig("varchar")}, {"kind": "TYPE", "value": integer})), "{a=1}"),
        (text([1, "x"], sig("row",
                            {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "a"}, "typeSignature": integer}},
                            {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "b"}, "typeSignature": sig("varchar")}})),
         "{a=1, b=x}"),
        (text("aGk=", sig("varbinary")), "68 69"),
        (datum(None, integer), {}),
        (column_info({"name": "d", "type": "decimal(10,2)", "typeSignature": sig(
            "decimal", {"kind": "LONG", "value": 10}, {"kind": "LONG", "value": 2})})["Precision"], 10),
        (column_info({"name": "r", "type": "real", "typeSignature": sig("real")})["Type"], "float"),
    ]
    failures = [(got, expected) for got, expected in cases if got != expected]
    for got, expected in failures:
        print(f"FAIL got {got!r}, expected {expected!r}")
    print(f"{len(cases) - len(failures)} passed, {len(failures)} failed")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    _self_test()
