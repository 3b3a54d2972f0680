"""The softmax demonstration: a dropout network's real logits through fastmlp's fused kernel
(row max) and through its deliberately wrong twin (batch max). The network is trained by the
sweep engine (its weights kept); the measurement runs here, on the parent's data."""

import math
import statistics

import numpy as np

from .. import kernels
from .runs import Group, _cmd, pct
from .settings import CLAIMS, FLOAT32_EXP_UNDERFLOW, SOFTMAX_SCALES


def naive_softmax_xent(logits, labels):
    """The deliberately WRONG softmax + cross-entropy: it subtracts the batch-wide max, not each
    row's. A row whose logits all lie more than ~104 below the batch's largest logit underflows
    to exp(...) = 0 in float32: its probabilities are 0/0 = NaN; a label probability that
    underflows gives log 0 = -inf. Returns (mean loss, probs, n rows 0/0, n rows log 0), in the
    logits' dtype."""
    B = logits.shape[0]
    with np.errstate(all="ignore"):
        e = np.exp(logits - logits.max())
        total = e.sum(axis=1, keepdims=True)
        probs = e / total
        p_label = probs[np.arange(B), labels]
        loss = -np.log(p_label).mean()
    zero_rows = int(np.count_nonzero(total[:, 0] == 0))
    log_zero = int(np.count_nonzero(p_label == 0))
    return float(loss), probs, zero_rows, log_zero


def fused_softmax_xent(logits, labels):
    """fastmlp's kernel (each row's max subtracted): mean loss."""
    probs = np.empty_like(logits)
    loss, _ = kernels.softmax_xent_forward(probs, logits, np.ascontiguousarray(labels,
                                                                                np.int64))
    return float(loss)


def forward_logits(model, x, dropout=0.0, dropout_input=0.0, rng=None):
    """Logits (B, K) float32 of ``model`` for inputs ``x`` (B, D), as in training when the
    rates are positive: inverted dropout on the input and on every hidden layer's output,
    survivors scaled by 1/(1 - rate). Masks are drawn with NumPy's ``rng``."""
    def drop(a, rate):
        if rate <= 0:
            return a
        keep = rng.random(a.shape) >= rate
        return a * (keep * np.float32(1.0 / (1.0 - rate))).astype(np.float32)

    h = drop(np.ascontiguousarray(x, np.float32), dropout_input)
    for l in range(model.n_layers):
        z = np.ascontiguousarray(h @ model.weight(l) + model.bias(l), dtype=np.float32)
        if l == model.n_layers - 1:
            return z
        a = np.empty_like(z)
        kernels.activation_forward(a, z, model.activation)
        h = drop(a, dropout)
    return h


def softmax_runs(ctx):
    """A dropout network, trained once (seed 0), its weights kept."""
    quick = dict(hidden=(64,), epochs=1)
    cfg = ctx.cfg(quick=quick, hidden=(256, 256), activation="relu", dropout=0.5,
                  batch_ramp=None, schedule="constant", lr=0.1, epochs=3)
    return [Group("dropout network", cfg, seeds=[0], keep_model=True)]


def softmax_verdict(ctx, groups):
    """Take the network's training-mode logits on real MNIST batches, and count the batches
    whose loss is NaN/inf with the batch-max softmax and with fastmlp's kernel; then the same
    with the logits multiplied by 2, 4, ... (networks with larger logits)."""
    from ..config import TrainConfig

    g = groups[0]
    model, = g.pop("models")
    cfg = TrainConfig.from_dict({**g["config"], "hidden": tuple(g["config"]["hidden"])})
    return _softmax_measure(ctx, cfg, g, model)


def _logit_batches(data, model, cfg, n_batches, B):
    """The network's logits on the same ``n_batches`` random training batches of ``B``, with
    dropout as in training and without: {mode: [(logits, labels), ...]}."""
    rng = np.random.default_rng(12345)
    order = rng.permutation(len(data.splits.train_x))[:n_batches * B]
    modes = {}
    for mode, rate, rate_in in (("training (dropout on)", cfg.dropout, cfg.dropout_input),
                                ("evaluation (dropout off)", 0.0, 0.0)):
        batches = []
        for i in range(n_batches):
            rows = order[i * B:(i + 1) * B]
            x = model.transform.apply(data.splits.train_x[rows])
            logits = forward_logits(model, x, rate, rate_in, rng)
            batches.append((logits, np.ascontiguousarray(data.splits.train_y[rows], np.int64)))
        modes[mode] = batches
    return modes


def _spread(logits):
    """Largest minus smallest row maximum of a batch's logits."""
    row_max = logits.max(axis=1)
    return float(row_max.max() - row_max.min())


def _measure_scale(batches, s, n_batches, example):
    """Both softmaxes on every batch with the logits multiplied by ``s``: the scale's row of
    counts, and ``example``, or the first batch where the batch-max loss is not finite if
    ``example`` is still None."""
    naive_bad = fused_bad = rows_00 = rows_log0 = 0
    agree = 0.0
    for logits, labels in batches:
        lg = (logits * np.float32(s)).astype(np.float32)
        nl, _, z, l0 = naive_softmax_xent(lg, labels)
        fl = fused_softmax_xent(lg, labels)
        rows_00 += z
        rows_log0 += l0
        naive_bad += not math.isfinite(nl)
        fused_bad += not math.isfinite(fl)
        if math.isfinite(nl) and math.isfinite(fl):
            agree = max(agree, abs(nl - fl) / max(1.0, abs(fl)))
        elif example is None and not math.isfinite(nl):
            example = dict(scale=s, naive_loss=repr(nl), fused_loss=fl, spread=_spread(lg),
                           rows_0_over_0=z, rows_log_0=l0, batch_size=len(labels))
    entry = dict(scale=s, naive_fail_fraction=naive_bad / n_batches,
                 fused_fail_fraction=fused_bad / n_batches,
                 naive_rows_0_over_0=rows_00, naive_rows_log_0=rows_log0,
                 max_relative_difference_when_finite=agree)
    return entry, example


def _grade(scales):
    """(verdict, the first scale at which the batch-max softmax fails or None, whether
    fastmlp's kernel is finite at every scale)."""
    natural = scales[0]
    first_fail = next((e["scale"] for e in scales if e["naive_fail_fraction"] > 0), None)
    fused_ok = all(e["fused_fail_fraction"] == 0 for e in scales)
    if natural["naive_fail_fraction"] > 0 and fused_ok:
        verdict = "confirmed"
    elif first_fail is not None and fused_ok:
        verdict = "partly confirmed"
    else:
        verdict = "not confirmed"
    return verdict, first_fail, fused_ok


def _verdict_text(scales, spreads, first_fail, fused_ok, n_batches, B):
    """The verdict's sentence: failures at the natural scale and at the first failing one,
    the spreads of row maxima, the loss error when finite, and whether fastmlp ever fails."""
    natural = scales[0]
    s_train, s_eval = spreads["training (dropout on)"], spreads["evaluation (dropout off)"]
    text = (f"on {n_batches} real training batches of {B} through a trained dropout network "
            f"(logits as in training), the batch-max softmax gives a NaN/inf loss in "
            f"{pct(natural['naive_fail_fraction'], 0)} of batches at the network's own logits "
            f"(largest spread of row maxima within a batch {max(s_train):.0f}, median "
            f"{statistics.median(s_train):.0f} with dropout vs {statistics.median(s_eval):.0f} "
            f"without; float32 underflows beyond ~{FLOAT32_EXP_UNDERFLOW:.0f})")
    if first_fail is not None and first_fail != 1:
        e = next(e for e in scales if e["scale"] == first_fail)
        text += (f"; with logits x{first_fail} it fails in {pct(e['naive_fail_fraction'], 0)}"
                 f" of batches")
    elif first_fail is None:
        text += f"; it never fails, even with logits x{SOFTMAX_SCALES[-1]}"
    worst = max(e["max_relative_difference_when_finite"] for e in scales)
    if worst > 1e-5:
        text += (f"; where it stays finite its loss can still be off by {worst:.1e} (relative), "
                 "from partly underflowed rows")
    text += ("; fastmlp's row-max kernel is finite in every batch at every scale."
             if fused_ok else "; fastmlp's kernel ALSO fails in some batches.")
    return text


def _softmax_measure(ctx, cfg, g, model):
    """Measure both softmaxes on the trained network's logits at every scale in
    ``SOFTMAX_SCALES``; the claim's verdict, its table and data."""
    data = ctx.data(cfg)
    n_batches, B = (20, 128) if ctx.quick else (200, 128)
    modes = _logit_batches(data, model, cfg, n_batches, B)
    spreads = {mode: [_spread(lg) for lg, _ in b] for mode, b in modes.items()}
    scales = []
    example = None
    for s in SOFTMAX_SCALES:
        entry, example = _measure_scale(modes["training (dropout on)"], s, n_batches, example)
        scales.append(entry)
    verdict, first_fail, fused_ok = _grade(scales)
    text = _verdict_text(scales, spreads, first_fail, fused_ok, n_batches, B)
    rows = [[f"x{e['scale']}", pct(e["naive_fail_fraction"], 0),
             str(e["naive_rows_0_over_0"]), str(e["naive_rows_log_0"]),
             pct(e["fused_fail_fraction"], 0), f"{e['max_relative_difference_when_finite']:.1e}",
             _cmd(g["command"])]
            for e in scales]
    return dict(claim=CLAIMS["softmax"],
                rule="confirmed if the batch-max softmax gives a non-finite loss on some batches "
                     "of the trained network's own logits while fastmlp's kernel never does; "
                     "partly if it takes scaled-up logits",
                verdict=verdict, verdict_text=text,
                command=g["command"],
                columns=["logits", "batch-max softmax: batches NaN/inf", "rows 0/0",
                         "rows log 0", "fastmlp kernel: batches NaN/inf",
                         "largest relative loss difference when both finite",
                         "the network (then python -m fastmlp.report --only softmax)"],
                rows=rows, groups=[g],
                data=dict(n_batches=n_batches, batch_size=B, scales=scales, example=example,
                          spreads=spreads, first_failing_scale=first_fail,
                          underflow_threshold=FLOAT32_EXP_UNDERFLOW))

