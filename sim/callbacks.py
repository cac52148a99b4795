"""Hydra callbacks: at the end of a sweep, compare its runs and report the failed ones."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CompareSweep(Callback):
    """Run :func:`sim.compare.compare` over the sweep directory when a multirun ends."""

    def __init__(self, enabled: bool = True, baseline: str | None = None) -> None:
        self.enabled = enabled
        self.baseline = baseline

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from sim.compare import CompareError, compare, failed_runs

        sweep_dir = Path(config.hydra.sweep.dir)
        failed = failed_runs([sweep_dir])
        if self.enabled:
            try:
                text = compare([sweep_dir], sweep_dir, self.baseline)
                print(text)
                print(f"Comparison written to {sweep_dir}")
            except CompareError as err:
                print(f"comparison skipped: {err}", file=sys.stderr)
        if failed:
            print(f"{len(failed)} run(s) of the sweep failed (the others' results are kept):",
                  file=sys.stderr)
            for run_dir, message in failed:
                print(f"  FAILED {run_dir}: {message}", file=sys.stderr)
            sys.exit(1)
