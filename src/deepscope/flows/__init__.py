"""Flow-based instance segmentation, numerical core (Cellpose / Omnipose style).

* :mod:`deepscope.flows.targets`: flow-field training targets of label images
  (:func:`flow_targets`, ``"heat"`` or ``"distance"``) and the heat sources
  (:func:`object_centres`).
* :mod:`deepscope.flows.dynamics`: back from flows and foreground probability to labels:
  :func:`follow_flows`, :func:`cluster_endpoints`, :func:`flow_error` and the whole
  reconstruction :func:`flows_to_labels`.

2D ``(Y, X)`` and 3D ``(Z, Y, X)`` images are handled alike; flows are ``(ndim, *shape)``
with channel ``a`` the component along image axis ``a``.
"""

from deepscope.flows.dynamics import cluster_endpoints, flow_error, flows_to_labels, follow_flows
from deepscope.flows.targets import FLOW_METHODS, flow_targets, object_centres

__all__ = [
    "FLOW_METHODS",
    "cluster_endpoints",
    "flow_error",
    "flow_targets",
    "flows_to_labels",
    "follow_flows",
    "object_centres",
]
