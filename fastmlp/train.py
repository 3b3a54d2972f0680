"""``python -m fastmlp.train``: train an MLP on MNIST-like images from the command line.

With no flags it trains the default network on real MNIST (bundled, no network needed) and
reports accuracy on the validation half, the test half and all 10,000 test images.
"""

import argparse
import signal
import sys
import time
import types

from .cli import ArgumentParser, run_main
from .config import FIELD_FLAGS, PRESET_NOTES, PRESETS, TrainConfig, add_flags
from .errors import CheckpointError, ConfigError, FastMLPError, OutputError

_D = TrainConfig()


def build_parser():
    """The train command line: a flag for every TrainConfig field (from its metadata, see
    fastmlp.config), then the run's own flags."""
    p = ArgumentParser(
        prog="python -m fastmlp.train", argument_default=argparse.SUPPRESS,
        description="Train a multilayer perceptron on MNIST-like images with Numba kernels. "
                    f"With no flags: 784-{'-'.join(map(str, _D.hidden))}-10 on MNIST (bundled, "
                    f"no network needed), {_D.activation} hidden units (max(-c, x)), dropout "
                    f"{_D.dropout:g}, the {_D.optimizer} optimizer at lr {_D.lr:g}, a "
                    f"{_D.schedule} schedule, {_D.epochs} epochs, batch {_D.batch_ramp} in the "
                    f"first epoch doubling to {_D.batch_size}: about 98.8% on the last 5,000 test "
                    "images and 97.8% on all 10,000 (measured, median of 3 seeds), in seconds. "
                    "Flags override the chosen --preset, which overrides the defaults shown.")
    g = add_flags(p)["run"]
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="; ".join(f"{name}: {note}" for name, note in PRESET_NOTES.items()))
    g.add_argument("--save", metavar="PATH",
                   help="checkpoint path, written atomically after every epoch; an existing "
                        "file is replaced only if it is a fastmlp checkpoint")
    g.add_argument("--overwrite", action="store_true",
                   help="let --save, --metrics-json and --history-csv replace an existing "
                        "file that is not of their kind")
    g.add_argument("--resume", metavar="PATH",
                   help="continue from a checkpoint (its settings, overridden by given flags)")
    g.add_argument("--metrics-json", metavar="PATH", help="write the final summary as JSON")
    g.add_argument("--history-csv", metavar="PATH", help="write the per-epoch history as CSV")
    g.add_argument("--quiet", action="store_true", help="print only the final summary")
    return p


def config_from_args(args, base=None, base_path=None):
    """The TrainConfig for parsed ``args``: defaults < ``base`` (a checkpoint's, read from
    ``base_path``) < preset < the flags actually given (argument_default=SUPPRESS: a flag not
    given is not in ``args``)."""
    given = {k: v for k, v in vars(args).items() if k in FIELD_FLAGS}
    settings = dict(_checkpoint_settings(base, base_path, given.get("activation")) if base
                    else {})
    if getattr(args, "preset", None):
        settings.update(PRESETS[args.preset])
    settings.update(given)
    return TrainConfig(**settings)


def _checkpoint_settings(base, path, activation):
    """A resumed checkpoint's settings, checked on their own (so that a problem in them is
    named as the checkpoint's). Its activation is taken only from a built-in name: a user
    activation must be given again with --activation, since nothing a checkpoint names is
    imported."""
    from .choices.activations import checkpoint_activation

    if not isinstance(base, dict):
        raise CheckpointError(f"checkpoint {path} holds no training configuration")
    base = dict(base)
    if activation is None:  # a built-in, or an error saying how to name the user's one
        checkpoint_activation(base.get("activation"), base.get("activation"), None, path)
    else:
        base["activation"] = activation
    try:
        TrainConfig.from_dict({**base, "hidden": tuple(base.get("hidden") or ())})
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds settings this version cannot use "
                              f"({exc}); train anew") from None
    return base


def check_outputs(args, cfg=None):
    """Before any data is read: every output path can be written, is no other output and not
    the checkpoint --resume reads (--save may continue it in place), and replaces an existing
    file only if it is of its own kind (a checkpoint, a metrics JSON, a history CSV) or with
    --overwrite: a typo must not destroy someone's data (exit 2 otherwise)."""
    from .files import check_outputs as check
    from .training.checkpoint import is_checkpoint
    from .training.outputs import is_history_csv, is_metrics_json

    check([("--save", getattr(args, "save", None), is_checkpoint, "a fastmlp checkpoint"),
           ("--metrics-json", getattr(args, "metrics_json", None), is_metrics_json,
            "a metrics JSON fastmlp wrote"),
           ("--history-csv", getattr(args, "history_csv", None), is_history_csv,
            "a history CSV fastmlp wrote")],
          inputs=[("--resume", getattr(args, "resume", None)), *_data_files(cfg)],
          overwrite=getattr(args, "overwrite", False), allow_same={("--save", "--resume")})


def _data_files(cfg):
    """``("--data-dir", file)`` for each data file a --data-dir run reads (none if unfound:
    loading it says so)."""
    from .data import find_dataset
    from .errors import DataError

    if cfg is None or cfg.data_dir is None:
        return []
    try:
        return [("--data-dir", p) for p in find_dataset(cfg.dataset, cfg.data_dir).values()]
    except (DataError, ConfigError, OSError):
        return []


def _fmt_pct(x):
    return f"{100 * x:.2f}%"


def main(argv=None):
    from .training import checkpoint
    from .training.run import train
    from .training.run_data import prepare_data

    args = build_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    resume = getattr(args, "resume", None)
    base = None
    if resume:
        meta = checkpoint.read_meta(resume)  # its arrays are read (and checked) once, later
        base = meta.get("config")
        if not isinstance(base, dict):
            raise CheckpointError(f"checkpoint {resume} holds no training configuration")
    cfg = config_from_args(args, base, resume)
    check_outputs(args, cfg)

    def log(msg=""):
        if not quiet:
            print(msg, flush=True)

    t0 = time.perf_counter()
    data = prepare_data(cfg)
    log(_data_line(data, time.perf_counter() - t0))
    log(f"network: {'-'.join(map(str, (data.transform.n_inputs, *cfg.hidden, data.n_classes)))}"
        f" {cfg.activation}, {cfg.optimizer} lr {cfg.lr:g} {cfg.schedule}, batch "
        f"{cfg.batch_ramp or cfg.batch_size}->{cfg.batch_size}, dropout {cfg.dropout:g} "
        f"(input {cfg.dropout_input:g}), {cfg.epochs} epochs, seed {cfg.seed}")
    bar = _ProgressBar(enabled=not quiet and sys.stderr.isatty())

    def on_epoch(r):
        bar.clear()
        log(f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  train {_fmt_pct(r['train_accuracy'])}"
            f"  val {_fmt_pct(r['val_accuracy'])}  {r['seconds']:.2f} s  "
            f"{r['samples_per_second'] / 1000:.0f}k samples/s  batch {r['batch_size']}  "
            f"lr {r['lr']:.4g}")

    result = train(cfg, data=data, save=getattr(args, "save", None), resume=resume,
                   on_epoch=on_epoch, on_progress=bar.update,
                   interrupt_save="fastmlp-interrupted.npz",
                   overwrite=getattr(args, "overwrite", False), release_train_images=True)
    bar.clear()
    s = result.summary
    if result.stopped == "interrupted":
        by = signal.Signals(result.signal).name if result.signal else "a request"
        print(f"interrupted ({by}): checkpoint saved to {result.checkpoint_path}; continue with "
              f"--resume {result.checkpoint_path}", file=sys.stderr)
    if result.stopped == "early_stop":
        log(f"early stop: no better validation accuracy for {cfg.early_stop} epochs; "
            f"restored the best weights (epoch {s['best_epoch']})")
    print(_accuracy_lines(s) +
          f"{s['epochs']} epochs in {s['train_seconds']:.1f} s "
          f"({s['samples_per_second'] / 1000:.0f}k samples/s median), compile/cache "
          f"{s['compile_seconds']:.2f} s, peak memory {s['peak_rss_mb']:.0f} MB, "
          f"{s['threads']} threads", flush=True)
    if s["split"] == "stratified":
        print("(split: stratified; validation and test are a seeded class-balanced halving)")
    if s["threads"] != (cfg.threads or s["threads"]):
        print(f"(--threads {cfg.threads}: this machine runs at most {s['threads']} threads, "
              f"so {s['threads']} were used)")
    _write_outputs(args, result)
    if result.stopped == "interrupted":
        return 128 + (result.signal or signal.SIGINT)
    return 0


def _data_line(data, seconds):
    sp = data.splits
    return (f"data: {data.dataset.name} from {data.dataset.source}: {len(sp.train_x)} train, "
            f"{len(sp.val_x)} validation, {len(sp.test_x)} test ({len(sp.test_full_x)} full "
            f"test), {data.transform.description} ({seconds:.2f} s)")


def _accuracy_lines(s):
    """The three accuracies, each with the real size of the images it was measured on."""
    halves = {"book": ("first", "last"), "stratified": ("stratified", "other stratified")}
    first, last = halves.get(s["split"], (None, None))
    if first:
        where = (f"{first} {s['n_val']:,} test images", f"{last} {s['n_test']:,} test images",
                 f"all {s['n_test_full']:,} test images")
    else:  # explicit validation arrays
        where = (f"{s['n_val']:,} validation images", f"{s['n_test']:,} test images",
                 f"all {s['n_test_full']:,} test images")
    names = ("validation accuracy", "test accuracy", "test accuracy")
    labels = [f"{n} ({w}):" for n, w in zip(names, where)]
    width = max(map(len, labels))
    keys = ("val_accuracy", "test_accuracy", "test_accuracy_full")
    return "".join(f"{lab:{width}s} {_fmt_pct(s[k])}\n" for lab, k in zip(labels, keys))


def _write_outputs(args, result):
    """Write --metrics-json and --history-csv; a failure (a full disk) is one line naming what
    was not written and what was, exit code 1 (OutputError), after trying every file."""
    from .training.outputs import write_history_csv, write_metrics_json

    jobs = [("--metrics-json", getattr(args, "metrics_json", None),
             lambda p: write_metrics_json(p, result.summary)),
            ("--history-csv", getattr(args, "history_csv", None),
             lambda p: write_history_csv(p, result.history))]
    failed, written = [], [result.checkpoint_path] if result.checkpoint_path else []
    for flag, path, write in jobs:
        if path is None:
            continue
        try:
            write(path)
            written.append(path)
        except (OSError, FastMLPError) as exc:
            failed.append(f"{flag} {path} ({getattr(exc, 'strerror', None) or exc})")
    if failed:
        raise OutputError("could not write " + "; ".join(failed) + "; kept: "
                          + (", ".join(written) or "nothing else was asked for"))


class _ProgressBar:
    """A one-line progress bar on stderr within long epochs, only on a terminal."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def update(self, epoch, done, total):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        width = 30
        filled = int(width * done / max(1, total))
        sys.stderr.write(f"\r  epoch {epoch + 1} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
            self.shown = False


class _CallableModule(types.ModuleType):
    """``fastmlp.train`` is both this command-line module and the API function
    ``fastmlp.training.run.train``: importing a submodule makes it an attribute of its package,
    which would shadow the function. Calling the module calls the function."""

    def __call__(self, *args, **kwargs):
        from .training.run import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(run_main(main))
