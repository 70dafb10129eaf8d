"""moto's server, serving Glue and S3 to Trino, the Athena front and the tests, with the Glue
operations that Trino's Hive connector calls and moto 5.2.5 does not implement: the column
statistics of tables and partitions. Without them `create table` in the Hive catalog fails
with `HIVE_METASTORE_ERROR: Failed updating column statistics`.

This Glue keeps no column statistics: updates and deletes succeed and change nothing, reads
find none (as for a table nobody has analyzed). Trino then plans without them, as Athena may.
Everything else is moto's own. Arguments are moto_server's (`-H`, `-p`).
"""

from moto.core.responses import ActionResult, EmptyResult
from moto.glue.responses import GlueResponse
from moto.server import main


def _no_statistics(self: GlueResponse) -> ActionResult:
    return ActionResult({"ColumnStatisticsList": [], "Errors": []})


def _nothing_failed(self: GlueResponse) -> ActionResult:
    return ActionResult({"Errors": []})


def _deleted(self: GlueResponse) -> ActionResult:
    return EmptyResult()


GlueResponse.get_column_statistics_for_table = _no_statistics
GlueResponse.get_column_statistics_for_partition = _no_statistics
GlueResponse.update_column_statistics_for_table = _nothing_failed
GlueResponse.update_column_statistics_for_partition = _nothing_failed
GlueResponse.delete_column_statistics_for_table = _deleted
GlueResponse.delete_column_statistics_for_partition = _deleted

if __name__ == "__main__":
    main()
