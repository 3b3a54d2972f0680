"""The validation/test split: the official test set halved, the training set used whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

SPLIT_MODES = ("book", "stratified")


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation and test arrays (``uint8``), from :func:`split`.

    ``test_full_x``/``test_full_y`` are always the whole official test set, so that results can
    be reported on it as well as on the held-out half (``test_x``/``test_y``).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    test_full_x: np.ndarray
    test_full_y: np.ndarray
    mode: str = "book"


def split(dataset, mode="book", seed=0):
    """Split a data set's official test set into validation and test halves.

    The training set is used whole. Model selection (early stopping, picking hyperparameters)
    must look at the validation half only; the test half is touched once, at the end.

    Parameters
    ----------
    dataset : Dataset
    mode : {"book", "stratified"}
        ``"book"``: validation = the first half of the test set (the first 5,000 of MNIST's
        10,000), test = the second half. This is the classic fixed split; note that the two
        halves of MNIST's test set come from different parts of NIST's original data and are
        *not* equally difficult, so an error rate on one half is not an estimate for the other:
        results are reported on the test half and on the full 10,000 (``test_full_*``).
        All arrays are views, nothing is copied.
        ``"stratified"``: a seeded random split of the test set in which every class is divided
        evenly between the halves (a class with an odd count puts its extra image alternately in
        validation and test, validation first, in class order). Indices are kept in increasing
        order. The halves are copies (7.8 MB for MNIST).
    seed : int
        Seed of ``numpy.random.default_rng`` for ``"stratified"``; ignored by ``"book"``.

    Returns
    -------
    Splits

    Raises
    ------
    ConfigError
        For an unknown ``mode``, or a test set with fewer than 2 images.
    """
    x, y = dataset.test_images, dataset.test_labels
    n = len(y)
    if n < 2:
        raise ConfigError(f"cannot split a test set of {n} images into validation and test")
    if mode == "book":
        half = n // 2
        val_x, val_y, test_x, test_y = x[:half], y[:half], x[half:], y[half:]
    elif mode == "stratified":
        rng = np.random.default_rng(seed)
        val_parts, test_parts = [], []
        extra_to_val = True
        for c in range(dataset.n_classes):
            members = rng.permutation(np.flatnonzero(y == c))
            k = len(members) // 2
            if len(members) % 2:
                k += extra_to_val
                extra_to_val = not extra_to_val
            val_parts.append(members[:k])
            test_parts.append(members[k:])
        val_idx = np.sort(np.concatenate(val_parts))
        test_idx = np.sort(np.concatenate(test_parts))
        val_x, val_y, test_x, test_y = x[val_idx], y[val_idx], x[test_idx], y[test_idx]
    else:
        raise ConfigError(f"unknown split mode {mode!r}; known modes: {', '.join(SPLIT_MODES)}")
    return Splits(
        train_x=dataset.train_images,
        train_y=dataset.train_labels,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        test_full_x=x,
        test_full_y=y,
        mode=mode,
    )
