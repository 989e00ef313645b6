"""Flow targets of label images: heat (Cellpose) and distance (Omnipose) flows, 2D and 3D."""

import numpy as np
import pytest
from skimage.draw import disk

from deepscope.errors import ConfigError, InputError
from deepscope.flows import flow_targets, object_centres


def disc_labels(shape=(48, 48), centre=(24, 24), radius=14, label=7) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    labels[disk(centre, radius, shape=shape)] = label
    return labels


def quarter_ring(shape=(64, 64), centre=(8.0, 8.0), inner=30.0, width=7.0) -> np.ndarray:
    """A bent rod: the quarter of a ring of the given width around ``centre`` (y, x >= centre)."""
    yy, xx = np.indices(shape)
    r = np.hypot(yy - centre[0], xx - centre[1])
    inside = (r >= inner) & (r < inner + width) & (yy >= centre[0]) & (xx >= centre[1])
    return inside.astype(np.int32)


def polar(shape, centre):
    """Radius, angle and unit radial/tangential directions of every pixel around ``centre``."""
    yy, xx = np.indices(shape)
    dy, dx = yy - centre[0], xx - centre[1]
    r = np.hypot(dy, dx)
    radial = np.stack([dy, dx]) / np.maximum(r, 1e-9)
    # the tangent that increases the angle atan2(dy, dx) (from the x axis towards the y axis)
    tangent = np.stack([radial[1], -radial[0]])
    return r, np.arctan2(dy, dx), radial, tangent


def test_disc_flows_are_unit_vectors_pointing_to_the_centre():
    labels = disc_labels()
    flows = flow_targets(labels)
    assert flows.shape == (2, 48, 48) and flows.dtype == np.float32

    inside = labels > 0
    assert np.all(flows[:, ~inside] == 0)  # background is zero
    length = np.linalg.norm(flows, axis=0)
    centre = tuple(object_centres(labels)[0])
    assert centre == (24, 24)
    # unit length everywhere inside, except the source of this symmetric disc (zero gradient)
    source = np.zeros_like(inside)
    source[centre] = True
    assert np.allclose(length[inside & ~source], 1, atol=1e-5)

    r, _, radial, _ = polar(labels.shape, centre)
    away = inside & (r > 2)
    towards_centre = -(flows * radial).sum(axis=0)[away]
    assert towards_centre.mean() > 0.9
    assert towards_centre.min() > 0.5


def test_labels_need_not_be_consecutive_and_touching_objects_stay_apart():
    labels = np.zeros((20, 40), np.int64)
    labels[4:16, 2:20] = 1000  # two touching boxes with large label values
    labels[4:16, 20:38] = 3
    flows = flow_targets(labels)
    # on both sides of the shared edge the flows point away from it, into their own object
    assert np.all(flows[1, 5:15, 19] < 0)
    assert np.all(flows[1, 5:15, 20] > 0)
    centres = object_centres(labels)  # rows in the order of the label values: 3, then 1000
    assert labels[tuple(centres[0])] == 3 and labels[tuple(centres[1])] == 1000


def test_bent_rod_heat_flows_run_along_the_rod_towards_its_source():
    labels = quarter_ring()
    flows = flow_targets(labels, method="heat")
    centre = (8.0, 8.0)
    source = object_centres(labels)[0]
    assert labels[tuple(source)] == 1
    r, angle, radial, tangent = polar(labels.shape, centre)
    source_angle = angle[tuple(source)]
    assert abs(source_angle - np.pi / 4) < 0.1  # the source sits in the middle of the arc

    # the rod's middle (spine band), away from the source and from the rod's ends
    spine = (labels > 0) & (np.abs(r - 33.5) <= 1.0)
    far = np.abs(angle - source_angle) > 0.2
    ends = (angle < 0.15) | (angle > np.pi / 2 - 0.15)
    middle = spine & far & ~ends
    assert middle.sum() > 50

    across = np.abs((flows * radial).sum(axis=0))[middle]
    assert across.mean() < 0.3  # roughly tangent to the arc, not cutting across it
    along = (flows * tangent).sum(axis=0) * np.sign(source_angle - angle)
    assert along[middle].mean() > 0.8  # and along the spine towards the source


def test_bent_rod_distance_flows_point_to_the_medial_axis():
    labels = quarter_ring()
    flows = flow_targets(labels, method="distance")
    r, angle, radial, _ = polar(labels.shape, (8.0, 8.0))
    spine_radius = 33.5
    off_axis = (labels > 0) & (np.abs(r - spine_radius) >= 2) & (angle > 0.2) & (angle < 1.37)
    assert off_axis.sum() > 100
    towards_axis = (flows * radial).sum(axis=0) * np.sign(spine_radius - r)
    assert towards_axis[off_axis].mean() > 0.9
    assert np.all(flows[:, labels == 0] == 0)


def test_object_centre_of_a_c_shape_is_inside_it():
    labels = np.zeros((40, 40), np.int32)
    labels[disk((20, 20), 15)] = 1
    labels[disk((20, 20), 9)] = 0
    labels[14:27, 20:] = 0  # open the ring on the right: a C whose centroid is in the hole
    (centre,) = object_centres(labels)
    assert labels[tuple(centre)] == 1
    flows = flow_targets(labels)
    assert np.all(flows[:, labels == 0] == 0)
    length = np.linalg.norm(flows, axis=0)[labels > 0]
    assert np.mean(np.isclose(length, 1, atol=1e-5)) > 0.99


def test_ball_flows_point_to_its_centre_in_3d():
    zz, yy, xx = np.indices((24, 24, 24))
    labels = (((zz - 12) ** 2 + (yy - 11) ** 2 + (xx - 12) ** 2) <= 8**2).astype(np.uint16)
    for method in ("heat", "distance"):
        flows = flow_targets(labels, method=method)
        assert flows.shape == (3, 24, 24, 24)
        offset = np.stack([zz - 12, yy - 11, xx - 12]).astype(float)
        dist = np.linalg.norm(offset, axis=0)
        away = (labels > 0) & (dist > 2.5)
        towards = -(flows * offset / np.maximum(dist, 1e-9)).sum(axis=0)[away]
        assert towards.mean() > 0.9, method
        assert np.allclose(np.linalg.norm(flows, axis=0)[away], 1, atol=1e-5)


def test_empty_and_tiny_objects():
    assert not flow_targets(np.zeros((8, 9), np.int32)).any()
    assert object_centres(np.zeros((4, 4, 4), np.int32)).shape == (0, 3)
    labels = np.zeros((6, 6), np.int32)
    labels[2, 2] = 1  # one pixel: no gradient, zero flow
    labels[4, 1:5] = 2  # a line: flows along it, towards its middle
    flows = flow_targets(labels)
    assert not flows[:, 2, 2].any()
    assert flows[1, 4, 1] > 0.99 and flows[1, 4, 4] < -0.99


def test_bad_inputs_are_refused():
    with pytest.raises(InputError):
        flow_targets(np.zeros(10, np.int32))
    with pytest.raises(InputError):
        flow_targets(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError):
        flow_targets(-np.ones((4, 4), np.int32))
    with pytest.raises(ConfigError):
        flow_targets(np.zeros((4, 4), np.int32), method="magic")
