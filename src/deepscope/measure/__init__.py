"""Measurements of segmented objects."""

from deepscope.measure.regions import measure_objects, write_table
from deepscope.measure.size import equivalent_diameters, median_diameter

__all__ = ["equivalent_diameters", "measure_objects", "median_diameter", "write_table"]
