"""A sweep's ensembles (``--ensemble``): for each configuration, its seeds' saved models as one
(:class:`~fastmlp.model.Ensemble`, the mean of their probabilities), scored on the same
validation, test and full test images as each run.

Each member is read back from ``OUT/models/<id>.npz`` like any checkpoint (checked before use,
nothing in it imported): a configuration whose models are missing, unreadable or of a user
activation (which a results file must not make fastmlp import) gets no ensemble, and the
summary says how many members each ensemble had.
"""

from ..errors import FastMLPError
from . import store


def ensemble_scores(rows, model_path):
    """``{group key: {"members": n, "val": ..., "test": ..., "test_full": ...}}`` for every
    configuration of ``rows`` with two or more finished runs whose models ``model_path(id)``
    can be read (accuracies of their ensemble; groups of fewer get ``{"members": n}``)."""
    from ..data import load_dataset, split
    from ..model import Ensemble
    from ..training.checkpoint import load_model

    groups = {}
    for r in rows:
        if not r.get("error") and r.get("summary"):
            groups.setdefault(store.group_key(r.get("config")), []).append(r)
    splits, scores = {}, {}
    for gkey, runs in groups.items():
        models = []
        for r in runs:
            try:
                models.append(load_model(model_path(r["id"]))[0])
            except FastMLPError:  # missing, damaged, or a user activation: not a member
                continue
        scores[gkey] = {"members": len(models)}
        if len(models) < 2:
            continue
        cfg = runs[0]["config"]
        data_key = (cfg.get("dataset"), cfg.get("data_dir"), cfg.get("split"),
                    cfg.get("seed") if cfg.get("split") == "stratified" else None)
        if data_key not in splits:
            ds = load_dataset(cfg.get("dataset", "mnist"), data_dir=cfg.get("data_dir"))
            splits[data_key] = split(ds, mode=cfg.get("split", "book"), seed=cfg.get("seed", 0))
        sp = splits[data_key]
        try:
            ens = Ensemble(models)
        except FastMLPError:
            continue
        scores[gkey].update(val=ens.accuracy(sp.val_x, sp.val_y),
                            test=ens.accuracy(sp.test_x, sp.test_y),
                            test_full=ens.accuracy(sp.test_full_x, sp.test_full_y))
    return scores
