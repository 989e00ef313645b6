"""Star-convex objects (StarDist-style): rays, distance targets, NMS and rasterisation."""

from deepscope.starconvex.nms import Painter, draw_labels, non_maximum_suppression
from deepscope.starconvex.rays import Rays, object_probability, ray_distances, rays_2d, rays_3d

__all__ = [
    "Painter",
    "Rays",
    "draw_labels",
    "non_maximum_suppression",
    "object_probability",
    "ray_distances",
    "rays_2d",
    "rays_3d",
]
