"""Measurements of segmented objects."""

from deepscope.measure.regions import measure_objects, write_table

__all__ = ["measure_objects", "write_table"]
