"""Pieces of the self-contained HTML pages we write (QC report, explore page): one style
sheet and matplotlib figures as embedded PNG data URIs."""

from __future__ import annotations

import base64
import io

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1240px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.92em;margin:.6em 0}
th,td{padding:.25em .65em;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#f5f5f5}th:first-child,td:first-child{text-align:left}
td.best{background:#d9f0d3;font-weight:600}td.what{color:#666;text-align:left}
.meta,.note{color:#555;font-size:.92em}
.verdict{font-size:1.05em;padding:.5em .9em;border-left:4px solid #2b83ba;background:#f1f7fb}
figure{margin:1.2em 0}figcaption{font-size:.92em;color:#444}img{max-width:100%;height:auto}
dl.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(13em,1fr));gap:.1em 1em}
dl.kv div{display:flex;justify-content:space-between;border-bottom:1px solid #eee}
dt{color:#555}dd{margin:0;font-variant-numeric:tabular-nums}
"""


def new_figure(width: float, height: float, constrained: bool = True, dpi: int = 90):
    """A matplotlib figure drawn by the Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained" if constrained else None)
    FigureCanvasAgg(figure)
    return figure


def data_uri(figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI for an ``<img src>``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
