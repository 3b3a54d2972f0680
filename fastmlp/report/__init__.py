"""``python -m fastmlp.report``: check the claims fastmlp grew from, on real data, and write the
answers to ``docs/RESULTS.md``, ``docs/results.json`` and PNG plots.

Each claim is a sweep definition (the groups of runs it needs), a verdict rule and a plot
(claims.py, softmax.py, plots.py). The runs go through the sweep engine (fastmlp.sweep): worker
processes train them in parallel, reusing data and compiled code, and every finished run is
kept in ``OUT/runs/.../results.jsonl``, so a stopped report resumes where it stopped. A verdict
is computed from the numbers by its stated rule, never written by hand. Every row names the
``python -m fastmlp.train`` command that repeats its run (the command's flags parse back into
the very same :class:`TrainConfig`).

``--quick`` runs a scaled-down version (one seed, one or two epochs, small networks, one thread
per run) in well under a minute: it exercises every experiment and the whole report for CI, but
its verdicts are about those small runs, not about the claims.

Layout: settings.py (claims, targets, swept values) -> commands.py (train command lines) ->
runs.py (groups of runs through the sweep engine, medians, formatting) -> regularisers.py
(issue 34's claims about regularisers and committees) -> claims.py (each claim: runs + verdict;
the table of claims) and softmax.py (the softmax demonstration) -> plots.py ->
render.py (machine line, results.json, RESULTS.md) -> command.py (the command line).
"""

from .claims import CLAIM_ROWS, EXPERIMENT_FUNCTIONS, run_claim
from .command import build_parser, main
from .commands import command_for, train_argv
from .plots import PLOTS, matplotlib_available, write_plots
from .render import machine_info, machine_line, render_markdown, write_report
from .runs import Context, Group, RunFailed, time_to
from .settings import (ACTIVATIONS, BEST_TARGET, CENTER_TARGET, CENTERS, CLAIMS,
                       COMMITTEE_EPOCHS, COMMITTEE_PRESET, COMMITTEE_SIZE, CROPS, EXPERIMENTS,
                       FASHION_TARGET, FIXED_BATCHES, FLOAT32_EXP_UNDERFLOW, LABEL_SMOOTHING,
                       MAX_NORM, MIN_TOLERANCE, MOMENTUM_FINAL, NOTES, PLOT_NAMES, RAMP_TARGETS,
                       SHIFTED_ACTIVATIONS, SHIFTED_DEPTHS, SOFTMAX_SCALES, SPEED_MARGIN,
                       TIME_TARGET, TITLES, VAL_TARGET, WIDE_EPOCHS, WIDE_PRESET)
from .softmax import forward_logits, fused_softmax_xent, naive_softmax_xent

__all__ = [
    "ACTIVATIONS", "BEST_TARGET", "CENTERS", "CENTER_TARGET", "CLAIMS", "CLAIM_ROWS",
    "COMMITTEE_EPOCHS", "COMMITTEE_PRESET", "COMMITTEE_SIZE", "CROPS", "EXPERIMENTS",
    "EXPERIMENT_FUNCTIONS", "FASHION_TARGET", "FIXED_BATCHES", "FLOAT32_EXP_UNDERFLOW",
    "LABEL_SMOOTHING", "MAX_NORM", "MIN_TOLERANCE", "MOMENTUM_FINAL", "NOTES", "PLOTS",
    "PLOT_NAMES", "RAMP_TARGETS", "SHIFTED_ACTIVATIONS", "SHIFTED_DEPTHS", "SOFTMAX_SCALES",
    "SPEED_MARGIN", "TIME_TARGET", "TITLES", "VAL_TARGET", "WIDE_EPOCHS", "WIDE_PRESET",
    "Context", "Group", "RunFailed", "build_parser", "command_for", "forward_logits",
    "fused_softmax_xent", "machine_info", "machine_line", "main", "matplotlib_available",
    "naive_softmax_xent", "render_markdown", "run_claim", "time_to", "train_argv",
    "write_plots", "write_report",
]
