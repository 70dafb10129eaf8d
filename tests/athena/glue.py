"""The Athena front's own Glue calls, made on moto directly (so they are not in the event log,
which holds strata's calls): whether a table is Iceberg and a schema's Iceberg tables (for the
translation), and the one DDL change Trino cannot make on a Hive table, a column's new name or
type (Athena's Hive DDL only edits the Glue table, and so does this).
"""

from __future__ import annotations

import os

import boto3

MOTO_URL = f"http://127.0.0.1:{os.environ.get('STANDIN_MOTO_PORT', '4567')}"

# The members of a Glue Table that UpdateTable takes back as its TableInput.
_TABLE_INPUT = ("Name", "Description", "Owner", "LastAccessTime", "LastAnalyzedTime", "Retention",
                "StorageDescriptor", "PartitionKeys", "ViewOriginalText", "ViewExpandedText",
                "TableType", "Parameters", "TargetTable")


class GlueFailure(Exception):
    """A change the front could not make: `name` as a Trino error name, and a message."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


class Glue:
    def __init__(self) -> None:
        self.client = boto3.client(
            "glue", endpoint_url=MOTO_URL, region_name="us-east-1",
            aws_access_key_id="standin", aws_secret_access_key="standin",
        )

    def _table(self, schema: str, table: str) -> dict | None:
        try:
            return self.client.get_table(DatabaseName=schema.lower(), Name=table.lower())["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return None

    def is_iceberg(self, schema: str, table: str) -> bool:
        found = self._table(schema, table)
        return bool(found) and found.get("Parameters", {}).get("table_type", "").upper() == "ICEBERG"

    def iceberg_tables(self, schema: str) -> list[str]:
        names = []
        try:
            for page in self.client.get_paginator("get_tables").paginate(DatabaseName=schema.lower()):
                names += [t["Name"] for t in page["TableList"]
                          if t.get("Parameters", {}).get("table_type", "").upper() == "ICEBERG"]
        except self.client.exceptions.EntityNotFoundException:
            pass
        return names

    def change_column(self, schema: str, table: str, old: str, new: str, hive_type: str, comment: str | None) -> None:
        found = self._table(schema, table)
        if found is None:
            raise GlueFailure("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{schema}.{table}' does not exist")
        table_input = {k: found[k] for k in _TABLE_INPUT if k in found}
        for column in table_input.get("StorageDescriptor", {}).get("Columns", []):
            if column["Name"].lower() == old.lower():
                column["Name"], column["Type"] = new.lower(), hive_type
                if comment is not None:
                    column["Comment"] = comment
                break
        else:
            raise GlueFailure("COLUMN_NOT_FOUND", f"Column '{old}' does not exist in table '{schema}.{table}'")
        self.client.update_table(DatabaseName=schema.lower(), TableInput=table_input)
