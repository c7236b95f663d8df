"""`mathforge report`: tables of finished eval runs (models x benchmarks), as markdown or CSV."""

from mathforge.report.tables import (
    Cell,
    Column,
    ReportOptions,
    Table,
    build_report,
    build_table,
    find_runs,
    render,
)

__all__ = ["Cell", "Column", "ReportOptions", "Table", "build_report", "build_table", "find_runs", "render"]
