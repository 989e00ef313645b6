"""Reports a biologist can open in a browser: :func:`qc_report` for image restoration."""

from deepscope.report.qc import pair_predictions, qc_report

__all__ = ["pair_predictions", "qc_report"]
