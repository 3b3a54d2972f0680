"""``python -m fastmlp.predict MODEL [MODEL ...] IMAGE``: the predicted class of an image.

IMAGE is a PNG (read with Pillow, if installed: ``pip install pillow``) of the model's image size,
white digit on black as in MNIST (``--invert`` for black on white), or an IDX image file, whose
every image is classified (one line each). Several models predict as an ensemble: the class of
highest mean probability.
"""

import sys
import warnings

import numpy as np

from .cli import ACTIVATION_HELP, ArgumentParser, run_main
from .errors import ConfigError, DataError


def _read_png(path, shape, invert):
    """The PNG at ``path`` as a (1, rows, cols) uint8 batch. Its size is read from its header
    and checked against the model's before a pixel is decoded: a 30000 x 30000 image (a
    decompression bomb) is refused in a line, not decoded."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("reading PNG files needs Pillow, which is not installed: "
                          "pip install pillow (or give an IDX file)") from None
    try:
        with warnings.catch_warnings():  # the size is checked below, before decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if img.size != (shape[1], shape[0]):
                raise DataError(f"{path}: image is {img.size[0]}x{img.size[1]}, the model "
                                f"expects {shape[1]}x{shape[0]}; resize it first")
            a = np.asarray(img.convert("L"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: the image is far larger than the model's {shape[1]}x"
                        f"{shape[0]} ({exc}); resize it first") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the image ({exc}); give a PNG file") from None
    return (255 - a if invert else a)[None]


def main(argv=None):
    from .data import read_idx
    from .model import Ensemble
    from .training.checkpoint import load_model

    p = ArgumentParser(prog="python -m fastmlp.predict",
                       description="Print the predicted class of an image.")
    p.add_argument("model", nargs="+", help="checkpoint file(s) (.npz); several predict as an "
                                            "ensemble (the mean of their probabilities)")
    p.add_argument("image", help="a PNG file, or an IDX images file (.gz or raw)")
    p.add_argument("--invert", action="store_true", help="PNG is a dark digit on light ground")
    p.add_argument("--probs", action="store_true", help="also print the class probabilities")
    p.add_argument("--activation", help=ACTIVATION_HELP)
    args = p.parse_args(argv)
    models = [load_model(path, activation=args.activation)[0] for path in args.model]
    model = Ensemble(models) if len(models) > 1 else models[0]
    shape = tuple(models[0].transform.image_shape)
    if args.image.lower().endswith(".png"):
        images = _read_png(args.image, shape, args.invert)
    else:
        images = read_idx(args.image)
        if images.ndim != 3 or images.shape[1:] != shape:
            raise DataError(f"{args.image}: holds images of shape {images.shape[1:]}, the model "
                            f"expects {shape}")
        if len(images) == 0:
            raise DataError(f"{args.image}: holds no images; give an IDX images file with at "
                            "least one image")
    probs = model.predict_proba(images)
    for row in probs:
        line = str(int(np.argmax(row)))
        if args.probs:
            line += "  " + " ".join(f"{p:.3f}" for p in row)
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
