"""Lay out the FMD confocal data as paired folders that ``deepscope train`` reads.

Usage: .venv/bin/python tools/fmd_pairs.py OUT [--data ../shared/data/fmd_confocal_bpae_b]

FMD keeps one ground truth (``gt.tif``, the average of 50 frames) and eight noisy frames
per field of view. This writes, as symbolic links, ``OUT/{train,val,test}/inputs/
fovNN_noisy_KK.tif`` and ``.../targets/fovNN_noisy_KK.tif`` (the field's ``gt.tif``), and
for Noise2Noise ``.../n2n_targets/fovNN_noisy_KK.tif`` (the next noisy frame of the same
field). Split by field of view, so no field is in two parts: fov01-fov11 train, fov12-fov13
val, fov14-fov16 test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": range(1, 12), "val": range(12, 14), "test": range(14, 17)}


def write_pairs(data: Path, out: Path) -> None:
    for split, fovs in SPLITS.items():
        for kind in ("inputs", "targets", "n2n_targets"):
            (out / split / kind).mkdir(parents=True, exist_ok=True)
        for fov in fovs:
            folder = data / f"fov{fov:02d}"
            frames = sorted(folder.glob("noisy_*.tif"))
            for i, frame in enumerate(frames):
                name = f"{folder.name}_{frame.stem}.tif"
                partner = frames[(i + 1) % len(frames)]
                for kind, source in (
                    ("inputs", frame),
                    ("targets", folder / "gt.tif"),
                    ("n2n_targets", partner),
                ):
                    link = out / split / kind / name
                    if not link.exists():
                        link.symlink_to(source.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "fmd_confocal_bpae_b"
    )
    args = parser.parse_args()
    write_pairs(args.data, args.out)
    print(f"wrote paired folders under {args.out}")


if __name__ == "__main__":
    main()
