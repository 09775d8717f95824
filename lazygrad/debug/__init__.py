"""Tools to look at what the compiler does, layered on top of it (nothing in the compiler imports them)."""
from .draw import draw_graph, draw_schedule, draw_kernel, to_networkx
from .dump import dump
from .report import report, Report

__all__ = ["draw_graph", "draw_schedule", "draw_kernel", "to_networkx", "dump", "report", "Report"]
