"""Redshift's `COPY … FROM 's3://…'`: fetches the objects from the local S3 (moto) and turns
them into one CSV that PostgreSQL's `COPY … FROM STDIN WITH (FORMAT csv)` loads as Redshift
would have loaded the originals.

The CSV quotes every value and leaves NULL as an empty unquoted field, so what is NULL is
decided here, by Redshift's rules: an empty field is NULL unless it is bound for a character
column (then it is '' unless EMPTYASNULL); a blank one likewise with BLANKSASNULL. Blocking
I/O: the wire front runs it in a worker thread.
"""

from __future__ import annotations

import csv
import io
import os
from itertools import islice

import boto3
import botocore.config
import botocore.exceptions
import pyarrow.csv
import pyarrow.parquet

from compat import CopyFromS3, RedshiftError

S3_ENDPOINT = f"http://127.0.0.1:{os.environ.get('STANDIN_S3_PORT', '4566')}"

# PostgreSQL types whose empty field Redshift loads as '' (text, bpchar, varchar, char, name).
CHARACTER_TYPES = {25, 1042, 1043, 18, 19}

_s3 = boto3.client(
    "s3",
    endpoint_url=S3_ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="standin",
    aws_secret_access_key="standin",
    config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
)


def load(spec: CopyFromS3, column_types: list[int]) -> tuple[bytes, int]:
    """The CSV to load and its number of rows; `column_types` are the target columns' type
    oids, in load order. RedshiftError when S3 or the data says no."""
    objects = fetch(spec.url)
    if spec.format == "parquet":
        return _from_parquet(objects)
    character = [oid in CHARACTER_TYPES for oid in column_types]
    lines = []
    for data in objects:
        text = data.decode("utf-8")
        if spec.format == "csv":
            records = csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter, quotechar=spec.quote)
        else:
            records = (line.split(spec.delimiter) for line in text.splitlines())
        # Redshift skips IGNOREHEADER lines in every file, and blank lines everywhere.
        for record in islice(records, spec.ignore_header, None):
            if record and record != [""]:
                values = (
                    _value(spec, field, i < len(character) and character[i])
                    for i, field in enumerate(record)
                )
                lines.append(",".join(_quoted(v) for v in values) + "\n")
    return "".join(lines).encode(), len(lines)


def fetch(url: str) -> list[bytes]:
    """Every object under the prefix `url` names, in key order, as Redshift reads them."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        pages = _s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        if not keys:
            raise RedshiftError("XX000", f"The specified S3 prefix '{prefix}' does not exist", _detail(
                f"The specified S3 prefix '{prefix}' does not exist", "8001"))
        return [_s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys]
    except botocore.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        message = f"S3ServiceException:{error.response['Error']['Message']},Status {status},Error {code}"
        raise RedshiftError("XX000", message, _detail(message, "8001")) from None
    except botocore.exceptions.BotoCoreError as error:
        raise RedshiftError("XX000", f"S3ServiceException:{error}", "") from None


def _detail(error: str, code: str) -> str:
    """The shape of Redshift's detail for load errors."""
    return (
        "\n  -----------------------------------------------\n"
        f"  error:  {error}\n"
        f"  code:      {code}\n"
        "  -----------------------------------------------"
    )


def _value(spec: CopyFromS3, field: str, character: bool) -> str | None:
    if field == spec.null_as:
        return None
    if field.strip():
        return field
    if not character:
        return None
    empty = field == ""
    return None if (spec.empty_as_null if empty else spec.blanks_as_null) else field


def _quoted(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def _from_parquet(objects: list[bytes]) -> tuple[bytes, int]:
    """Parquet columns go to the target columns by position, as on Redshift. Arrow's CSV writer
    quotes strings and leaves nulls empty, as `copy_sql` expects."""
    out = io.BytesIO()
    rows = 0
    for data in objects:
        try:
            table = pyarrow.parquet.read_table(io.BytesIO(data))
        except pyarrow.ArrowException as error:
            raise RedshiftError("XX000", "Spectrum Scan Error", _detail(str(error), "15007")) from None
        pyarrow.csv.write_csv(table, out, pyarrow.csv.WriteOptions(include_header=False))
        rows += table.num_rows
    return out.getvalue(), rows
