"""The review page (`vq report`, `vq run --report`): records rendered for people."""

from vq.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
