"""One self-contained HTML report of a schema's outputs: volume, cost, quality, drift and fine-tuning break-even.

Four parts, each depending only on the ones before it:

- `data`: `build_report` gathers results, runs, metrics and the journal into `ReportData`;
- `charts`: matplotlib (imported lazily) draws them as inline SVG;
- `html`: `render_html` / `write_report` put data and charts into one page with no script and no URL;
- `terminal`: `print_report_summary`, a few lines of the same for the console (data only).

Money, numbers and percentages are formatted by `extractor.formatting`.
"""

from extractor.views.htmlreport.charts import breakeven_svg, cost_histogram_svg, cost_per_run_svg, field_bars_svg
from extractor.views.htmlreport.data import (
    DocRow,
    DriftRow,
    EvalSnapshot,
    Headline,
    ReportConfig,
    ReportData,
    RunPoint,
    build_report,
)
from extractor.views.htmlreport.html import SECTION_TITLES, render_html, write_report
from extractor.views.htmlreport.terminal import print_report_summary

__all__ = [
    "SECTION_TITLES",
    "DocRow",
    "DriftRow",
    "EvalSnapshot",
    "Headline",
    "ReportConfig",
    "ReportData",
    "RunPoint",
    "breakeven_svg",
    "build_report",
    "cost_histogram_svg",
    "cost_per_run_svg",
    "field_bars_svg",
    "print_report_summary",
    "render_html",
    "write_report",
]
