"""Benchmark of frame redaction. A program, not a test: it prints figures.

1. Quality on the synthetic corpus (`privacy.frame_corpus`: code editors,
   terminals, browser forms with secrets and personal data, benign text), each
   scene ``--copies`` times at shifted positions: recall (secrets no longer
   readable by OCR after redaction), benign words kept, boxes per rule.
2. Cost: CPU seconds per frame of `privacy.frames.redact_frame` (tesseract's
   child process included) and the frames/s one core sustains (1 / CPU s).
3. Pool: frames/s through a pool of ``--workers`` spawned processes, the way the
   gateway runs it (wall clock; bounded by the cores actually free).

    python bench/frames.py --copies 3 --workers 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from privacy.frame_corpus import measure, render_corpus
from privacy.frames import redact_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    frames = render_corpus(args.copies)
    report = measure(frames)
    print(f"frames: {report.frames} (1024x640 PNG)")
    print(
        f"secrets: {report.secrets}, no longer readable: {report.secrets_hidden} "
        f"-> recall {report.recall:.3f}"
    )
    print(
        f"benign words read before: {report.benign_read}, still read after: "
        f"{report.benign_kept} -> kept {report.benign_kept_ratio:.3f}"
    )
    print(f"boxes per rule: {report.trail}")
    if report.leaked:
        print(f"leaked: {report.leaked}")
    if report.lost:
        print(f"benign lost: {report.lost}")
    print(
        f"CPU per frame: {report.cpu_per_frame:.3f} s -> {1 / report.cpu_per_frame:.2f} "
        f"frames/s per core"
    )
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(redact_frame, [frames[0].data] * args.workers))  # warm the workers
        started = time.perf_counter()
        list(pool.map(redact_frame, [f.data for f in frames]))
        wall = time.perf_counter() - started
    print(f"pool of {args.workers}: {len(frames) / wall:.2f} frames/s wall")


if __name__ == "__main__":
    main()
