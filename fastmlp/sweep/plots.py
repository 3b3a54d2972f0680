"""A sweep's plots (matplotlib, optional): each swept key against accuracy, the seeds' spread
as error bars, and accuracy against training time for every run."""

import os

from ..files import atomic_write
from .store import METRICS, _value_text


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _figure(width=5.5, height=3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height))


def plot_key(rows, key, path):
    """Validation and full-test accuracy (median, half-range bars) for each value of ``key``,
    the other swept values pooled per line."""
    groups = rows.grouped()
    others = [k for k in rows.swept if k not in (key, "seed")]
    lines = {}
    for g in groups:
        if g["seeds"]:
            label = ", ".join(f"{k}={g[k]}" for k in others) or "val"
            lines.setdefault(label, []).append(g)
    values = []  # in the order the grid gives them (numbers sorted)
    for r in rows:
        v = _value_text((r.get("config") or {}).get(key))
        if v not in values:
            values.append(v)
    values = _sorted(values)
    plt, (fig, ax) = _figure()
    for label, gs in sorted(lines.items()):
        gs = sorted(gs, key=lambda g: values.index(g[key]))
        xs = [values.index(g[key]) for g in gs]
        ax.errorbar(xs, [100 * g["val_median"] for g in gs],
                    yerr=[100 * g["val_halfrange"] for g in gs], marker="o", capsize=3,
                    label=label)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(values)
    ax.set_xlabel(key)
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("median over seeds; bars: half the seeds' range", fontsize=9)
    if len(lines) > 1 or others:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def _sorted(values):
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def plot_time(rows, path):
    """Every finished run: full-test accuracy against training seconds."""
    plt, (fig, ax) = _figure()
    runs = [r["summary"] for r in rows if r.get("summary")]
    for name, key in METRICS:
        ax.scatter([s["train_seconds"] for s in runs], [100 * s[key] for s in runs], s=14,
                   label=name)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def plot_names(swept):
    """The file names write_plots writes for the swept keys ``swept``."""
    return [f"plot_{key}.png" for key in swept if key != "seed"] + ["accuracy_vs_time.png"]


def write_plots(rows, out):
    """The PNGs in ``out`` (plot_<key>.png per swept key, accuracy_vs_time.png); returns
    their paths, or [] without matplotlib or finished runs."""
    if not matplotlib_available() or not any(r.get("summary") for r in rows):
        return []
    paths = []
    for key in rows.swept:
        if key == "seed":
            continue
        path = os.path.join(out, f"plot_{key}.png")
        plot_key(rows, key, path)
        paths.append(path)
    path = os.path.join(out, "accuracy_vs_time.png")
    plot_time(rows, path)
    paths.append(path)
    return paths
