"""Split the tracking_bacteria frames into training and validation folders that pair.

Usage: .venv/bin/python tools/bacteria_split.py [--out runs/bacteria_split] [--first-val 42]

The data are in Cell Tracking Challenge layout: frames ``img/t000042.tif`` and their full
instance masks ``TRA/man_track000042.tif``, whose stems differ. The issue fixes the split by
time: frames t000-t041 train, t042-t052 validate (the later frames hold the dense colonies).
Writes symbolic links OUT/{train,val}/{images,masks}/tNNNNNN.tif, so ``--images`` and
``--masks`` pair by stem as everywhere else.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tracking_bacteria"
FRAME = re.compile(r"t(\d+)\.tif$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs/bacteria_split")
    parser.add_argument("--first-val", type=int, default=42, help="first validation frame")
    args = parser.parse_args()

    counts = {"train": 0, "val": 0}
    for image in sorted((DATA / "img").glob("t*.tif")):
        frame = int(FRAME.search(image.name).group(1))
        mask = DATA / "TRA" / f"man_track{frame:06d}.tif"
        side = "val" if frame >= args.first_val else "train"
        for role, source in (("images", image), ("masks", mask)):
            link = args.out / side / role / image.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(source.resolve())
        counts[side] += 1
    print(f"{counts['train']} training and {counts['val']} validation frames in {args.out}")


if __name__ == "__main__":
    main()
