"""Print the per-seed tables of docs/compression.md from the committed runs of a seed study.

    python scripts/study_tables.py docs/compression/runs/mnist [SETTING ...]

For every setting (run names without their ``seed=N`` part) and every trajectory its runs
recorded on the training split (the whole layer, each unit-subset size), a markdown table with
each seed's peak and end (nats, with their bands and epochs), the fall, its standard error and
test ("paired": per-input terms; "bands"), the saturation flags and the run's outcome, under the
setting's verdict from :func:`infodrop.study.compression_verdict`; then the final test and
train error of each seed from its metrics.jsonl.
"""

from __future__ import annotations

import sys
from pathlib import Path

from infodrop.experiments.study import group_settings
from infodrop.study import compression_verdict, recorded_trajectories


def _point(point) -> str:
    return f"{point.value:.3f} [{point.lower:.3f}, {point.upper:.3f}] ({point.epoch})"


def _errors(runs) -> str:
    parts = []
    for run in runs:
        last = next((line for line in reversed(run.metrics) if "test_error" in line), None)
        if last is not None:
            parts.append(f"seed {run.seed}: {100 * last['test_error']:.1f}% / {100 * last['train_error']:.1f}% (epoch {last['epoch']})")
    return "final test/train error: " + "; ".join(parts) if parts else ""


def tables(experiment_dir: Path, wanted: list[str]) -> str:
    """The markdown of every setting's per-seed tables."""
    out: list[str] = []
    for setting, runs in group_settings(experiment_dir, wanted).items():
        for estimator, split, subset in recorded_trajectories(runs):
            if split != "train" or estimator != "auto":
                continue
            verdict = compression_verdict(runs, estimator=estimator, split=split, subset=subset)
            what = "whole layer" if subset is None else f"k={subset}"
            out += [f"**{setting}, {what}: {verdict.verdict}** ({verdict.reason})", "",
                    "| seed | peak (epoch) | end (epoch) | fall | s.e. (test) | saturated peak/end | run |",
                    "| ---: | --- | --- | ---: | --- | --- | --- |"]
            for run in verdict.runs:
                stderr = "-" if run.fall_stderr is None else f"{run.fall_stderr:.4f}"
                out.append(f"| {run.seed} | {_point(run.peak)} | {_point(run.end)} | {run.fall:.3f} | {stderr} ({run.test}) | "
                           f"{run.peak.saturated}/{run.end.saturated} | {run.verdict} |")
            out.append("")
        errors = _errors(runs)
        if errors:
            out += [errors, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    folder = Path(args[0])
    if not folder.is_dir():
        print(f"study_tables: {folder} is not a folder; pass runs/<experiment>, e.g. docs/compression/runs/mnist", file=sys.stderr)
        return 2
    print(tables(folder, args[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
