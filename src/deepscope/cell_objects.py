"""Cell objects as the phenotyping tools see them: a fixed-size crop around each object,
where it is (position, centre, bounding box), what was done to it (gene, group) and a
few shape facts, gathered from a CellH5 file or from a folder of crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage import measure

from deepscope.data.crops import crops_at, fit_crop, raw_crops
from deepscope.errors import InputError
from deepscope.io import list_images
from deepscope.io.cellh5 import MappingRow, PositionData, read_cellh5, read_mapping
from deepscope.io.paths import is_image_path


@dataclass
class CellObjects:
    """``N`` objects: raw crops ``(N, C, S, S)`` float32 and one entry per object in every
    other field. Centres are (x, y) and boxes (top, bottom, left, right) in image pixels;
    contours are (x, y) outlines in crop coordinates (empty when no label image)."""

    crops: np.ndarray
    labels: np.ndarray
    centers: np.ndarray
    bboxes: np.ndarray
    positions: list[str]
    plates: list[str]
    wells: list[str]
    sites: list[str]
    genes: list[str]
    groups: list[str]
    is_control: np.ndarray
    angle: np.ndarray
    eccentricity: np.ndarray
    area: np.ndarray
    contours: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def _shape_facts(position: PositionData, index: np.ndarray) -> tuple[np.ndarray, ...]:
    """Orientation (degrees), eccentricity and area of the chosen objects from the
    position's feature table when it has them (NaN otherwise)."""
    names = position.feature_names
    out = []
    for name, scale in (("orientation", 180 / np.pi), ("eccentricity", 1.0), ("area", 1.0)):
        if name in names:
            out.append(position.features[index, names.index(name)].astype(np.float32) * scale)
        else:
            out.append(np.full(len(index), np.nan, np.float32))
    return tuple(out)


def _outline(labels: np.ndarray, label: int, cy: float, cx: float, size: int) -> np.ndarray:
    """(x, y) outline of one object in the coordinates of its crop."""
    half = size // 2
    y0, x0 = round(cy) - half, round(cx) - half
    window = np.zeros((size, size), bool)
    ys = slice(max(y0, 0), min(y0 + size, labels.shape[0]))
    xs = slice(max(x0, 0), min(x0 + size, labels.shape[1]))
    window[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = labels[ys, xs] == label
    found = measure.find_contours(np.pad(window, 1).astype(np.uint8), 0.5)
    if not found:
        return np.zeros((0, 2), np.float32)
    longest = max(found, key=len) - 1  # back from the padded frame
    return longest[:, ::-1].astype(np.float32)


def _position_objects(position: PositionData, row: MappingRow | None, size: int) -> CellObjects:
    key = position.key
    if position.image is None:
        raise InputError(f"position {key.plate}/{key.well}/{key.site} stores no image")
    keep = np.flatnonzero(position.time_idx == 0) if position.time_idx is not None else None
    index = keep if keep is not None else np.arange(position.n_objects)
    depth = position.image.shape[2]
    if depth > 1:  # crops of plane 0 would miss most objects of a volume
        raise InputError(
            f"position {key.plate}/{key.well}/{key.site} holds a volume of {depth} planes; cell "
            "features are learnt and encoded from 2D positions: build the CellH5 from 2D images"
        )
    image = position.image[:, 0, 0].astype(np.float32)  # (c, y, x) of the first frame
    centres_xy = np.asarray(position.centers, float)[index].reshape(-1, 2)
    crops = crops_at(image, centres_xy[:, ::-1], size)
    left, right, top, bottom = np.asarray(position.bboxes).reshape(-1, 4)[index].T
    angle, ecc, area = _shape_facts(position, index)
    contours = []
    if position.labels is not None:
        region = position.labels[0, 0, 0]
        ids = np.asarray(position.label_ids)[index]
        contours = [
            _outline(region, int(i), cy, cx, size)
            for i, (cx, cy) in zip(ids, centres_xy, strict=True)
        ]
    n = len(index)
    name = f"{key.plate}/{key.well}/{key.site}"
    return CellObjects(
        crops=crops,
        labels=np.asarray(position.label_ids)[index].astype(np.int64),
        centers=centres_xy,
        bboxes=np.stack([top, bottom, left, right], axis=1) if n else np.zeros((0, 4)),
        positions=[name] * n,
        plates=[key.plate] * n,
        wells=[key.well] * n,
        sites=[key.site] * n,
        genes=[row.gene if row else ""] * n,
        groups=[row.group if row else ""] * n,
        is_control=np.full(n, bool(row and row.is_control)),
        angle=angle,
        eccentricity=ecc,
        area=area,
        contours=contours,
    )


def concat(parts: Sequence[CellObjects]) -> CellObjects:
    """One table of the objects of several parts, in order."""
    if not parts:
        raise InputError("no cell objects found")
    fields = CellObjects.__dataclass_fields__
    merged = {}
    for name in fields:
        values = [getattr(p, name) for p in parts]
        if isinstance(values[0], np.ndarray):
            merged[name] = np.concatenate(values)
        else:
            merged[name] = [v for value in values for v in value]
    return CellObjects(**merged)


def objects_from_cellh5(
    path: str | Path,
    size: int,
    mapping: str | Path | None = None,
    controls_only: bool = False,
    control_token: str = "neg",
) -> CellObjects:
    """Crops of ``size`` pixels around every object of a CellH5 file (first frame and
    plane of each position), with gene and group from a ``mapping`` file (see
    :func:`deepscope.io.cellh5.read_mapping`); ``controls_only`` keeps the negative
    controls."""
    positions = read_cellh5(path)
    rows = {r.key: r for r in read_mapping(mapping, control_token)} if mapping else {}
    if mapping is not None:
        unknown = [p.key for p in positions if p.key not in rows]
        if unknown:
            k = unknown[0]
            raise InputError(
                f"position {k.plate}/{k.well}/{k.site} of {path} is not in the mapping file "
                f"{mapping}; add a row for every position"
            )
    if controls_only:
        if mapping is None:
            raise InputError("training on negative controls needs --mapping with a Group column")
        positions = [p for p in positions if rows[p.key].is_control]
        if not positions:
            raise InputError(
                f"the mapping file {mapping} marks no position as a negative control "
                f"('{control_token}' in its Group column)"
            )
    return concat([_position_objects(p, rows.get(p.key), size) for p in positions])


def objects_from_crops(paths: Sequence[Path], size: int, axes: str | None = None) -> CellObjects:
    """Crop files as cell objects (centred or padded to ``size``); the position is the
    file's folder and the label its index."""
    crops = [fit_crop(c.astype(np.float32), size) for c in raw_crops(paths, axes)]
    n = len(paths)
    folders = [p.parent.name for p in paths]
    nan = np.full(n, np.nan, np.float32)
    return CellObjects(
        crops=np.stack(crops) if crops else np.zeros((0, 1, size, size), np.float32),
        labels=np.arange(1, n + 1),
        centers=np.full((n, 2), size // 2, float),
        bboxes=np.tile([0, size, 0, size], (n, 1)),
        positions=folders,
        plates=[""] * n,
        wells=folders,
        sites=[p.name for p in paths],
        genes=[""] * n,
        groups=folders,
        is_control=np.zeros(n, bool),
        angle=nan,
        eccentricity=nan.copy(),
        area=nan.copy(),
    )


def crop_files(root: str | Path) -> list[Path]:
    """Image files of a folder and of its sub-folders (one level: class folders)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder; give a folder of crops")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    subfolders = [p for p in entries if p.is_dir() and not is_image_path(p)]
    if not subfolders:
        return list_images([root])
    top = [p for p in entries if is_image_path(p)]  # crops beside the class folders count too
    return top + [f for folder in subfolders for f in list_images([folder])]
