"""Denoising benchmark on FMD: raw, best Gaussian filter, our n2v and care, side by side.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_restoration_fmd.py [--care care-fmd-confocal [RUN ...]]
        [--n2v n2v-fmd-confocal] [--n2n NAME_OR_FOLDER] [--repeats 5]
        [--reference runs/careamics [runs/careamics-s7 ...]] [--json FILE]

Sets: the fields of view of ../shared/data/fmd_confocal_bpae_b that no model was trained or
validated on (fov14-fov16, all 8 noisy frames each, against the 50-frame average), and
../shared/data/fmd_test_mix (48 pairs; 12 categories, most of them other microscopes and
channels than the models were trained on). The Gaussian filter's sigma is chosen on the
validation fields fov12-fov13 (best mean PSNR), as a user would; the per-image oracle sigma
(best against the ground truth of each test image) is printed too.

Metrics: ``psnr255`` and ``ssim255`` compare raw intensities with data range 255 (the FMD
paper's convention; our models give images in the input's units); ``psnr`` and ``ssim`` are
:func:`deepscope.metrics.restoration.restoration_metrics` on fairly normalised pairs
(percentile-normalised target, affine fit of the prediction). With ``--reference DIR``, the
predictions of the reference tool CAREamics written by ``benchmarks/careamics_reference.py``
(``DIR/n2v/fovNN_noisy_KK.tif``, ``DIR/care/...``) are scored beside ours, each folder (runs
with other seeds, say) in rows of its own labelled by the folder's name. ``--care`` takes
several models too (our runs with other seeds); where either tool has more than one run,
the mean and standard deviation over its runs are printed, since one CARE training varies
by tenths of a dB with its seed. Also the time to restore one 512x512 image (median of
``--repeats`` after a warm-up, normalisation included). Writes ``--json``
(default benchmarks/results/restoration_fmd.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model

from deepscope.classical import gaussian_denoise
from deepscope.io import read_image
from deepscope.metrics.restoration import psnr, restoration_metrics, ssim
from deepscope.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SIGMAS = [0.5 + 0.25 * i for i in range(15)]


def fmd_fields(fovs: range) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, noisy, clean) for every noisy frame of the given confocal fields; names are
    ``fovNN_noisy_KK`` as in the folders of ``tools/fmd_pairs.py``."""
    pairs = []
    for fov in fovs:
        folder = DATA / "fmd_confocal_bpae_b" / f"fov{fov:02d}"
        clean = read_image(folder / "gt.tif").data.astype(np.float32)
        for frame in sorted(folder.glob("noisy_*.tif")):
            noisy = read_image(frame).data.astype(np.float32)
            pairs.append((f"{folder.name}_{frame.stem}", noisy, clean))
    return pairs


def test_mix() -> list[tuple[str, np.ndarray, np.ndarray]]:
    folder = DATA / "fmd_test_mix"
    return [
        (raw.stem, read_image(raw).data.astype(np.float32),
         read_image(folder / "gt" / raw.name).data.astype(np.float32))
        for raw in sorted((folder / "raw").glob("*.tif"))
    ]  # fmt: skip


def scores(pred: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    fair = restoration_metrics(pred, clean)
    return {
        "psnr255": psnr(pred, clean, 255.0),
        "ssim255": ssim(pred, clean, 255.0),
        "psnr": fair["psnr"],
        "ssim": fair["ssim"],
    }


def choose_sigma(pairs) -> float:
    """The sigma with the best mean PSNR (range 255) over ``pairs``."""
    means = [np.mean([psnr(gaussian_denoise(n, s), c, 255.0) for _, n, c in pairs]) for s in SIGMAS]
    return SIGMAS[int(np.argmax(means))]


def run_spread(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over several training runs."""
    return {
        key: {"mean": float(np.mean([r[key] for r in runs])),
              "sd": float(np.std([r[key] for r in runs], ddof=1))}
        for key in runs[0]
    }  # fmt: skip


def seconds_per_image(model, image: np.ndarray, repeats: int) -> float:
    model.predict(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--care", nargs="+", default=["care-fmd-confocal"])
    parser.add_argument("--n2v", default="n2v-fmd-confocal")
    parser.add_argument("--n2n", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--reference", type=Path, nargs="*", default=[], help="CAREamics output folders"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "restoration_fmd.json"
    )
    args = parser.parse_args()

    cares = [("care", args.care[0])] if len(args.care) == 1 else [
        (f"care ({Path(source).name})", source) for source in args.care
    ]  # fmt: skip
    models = {
        name: load_model(source, device="cpu")
        for name, source in (("n2v", args.n2v), ("n2n", args.n2n), *cares)
        if source
    }
    sigma = choose_sigma(fmd_fields(range(12, 14)))
    sets = {"fmd_confocal_test (fov14-16)": fmd_fields(range(14, 17)), "fmd_test_mix": test_mix()}
    table: dict[str, dict[str, dict[str, float]]] = {}
    run_means: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for set_name, pairs in sets.items():
        rows: dict[str, list[dict[str, float]]] = {}
        for name, noisy, clean in pairs:
            rows.setdefault("raw", []).append(scores(noisy, clean))
            rows.setdefault(f"gaussian (sigma {sigma} from val)", []).append(
                scores(gaussian_denoise(noisy, sigma), clean)
            )
            oracle = max(SIGMAS, key=lambda s: psnr(gaussian_denoise(noisy, s), clean, 255.0))
            rows.setdefault("gaussian (oracle sigma per image)", []).append(
                scores(gaussian_denoise(noisy, oracle), clean)
            )
            for method, model in models.items():
                rows.setdefault(method, []).append(scores(model.predict(noisy).image, clean))
            for folder in args.reference:
                for algorithm in ("n2v", "care"):
                    reference = folder / algorithm / f"{name}.tif"
                    if reference.is_file():
                        pred = read_image(reference).data.astype(np.float32)
                        rows.setdefault(f"careamics {algorithm} ({folder.name})", []).append(
                            scores(pred, clean)
                        )
        table[set_name] = {
            method: {k: float(np.mean([r[k] for r in values])) for k in values[0]}
            for method, values in rows.items()
        }
        print(f"\n{set_name}: {len(pairs)} images")
        print(f"{'method':38s} {'psnr255':>8s} {'ssim255':>8s} {'psnr':>7s} {'ssim':>7s}")
        for method, m in table[set_name].items():
            print(f"{method:38s} {m['psnr255']:8.2f} {m['ssim255']:8.3f} "
                  f"{m['psnr']:7.2f} {m['ssim']:7.3f}")  # fmt: skip
        for tool, prefix in (("ours", "care ("), ("careamics", "careamics care (")):
            runs = [m for method, m in table[set_name].items() if method.startswith(prefix)]
            if len(runs) > 1:
                spread = run_spread(runs)
                run_means.setdefault(set_name, {})[f"care, {tool}"] = spread
                print(f"care, {tool}: mean ± sd of {len(runs)} runs  " + "  ".join(
                    f"{k} {v['mean']:.2f} ± {v['sd']:.2f}" for k, v in spread.items()
                ))  # fmt: skip

    image = fmd_fields(range(14, 15))[0][1]
    timing = {name: seconds_per_image(m, image, args.repeats) for name, m in models.items()}
    print("\nseconds per 512x512 image (median):")
    for name, seconds in timing.items():
        print(f"  {name:6s} {seconds:.3f} s  ({models[name].predictor.backend})")
    result = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "models": {name: str(m.folder) for name, m in models.items()},
        "gaussian_sigma_from_val": sigma,
        "metrics": table,
        "run_means": run_means,
        "seconds_per_512": timing,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
