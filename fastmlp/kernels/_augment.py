"""On-the-fly augmentation: each training image translated by a random whole-pixel offset (and
rotated by a random angle, and distorted by a random smooth elastic field), done on the uint8
image while the batch is gathered (no augmented copy of the data set). A rotation or distortion
is sampled bilinearly, so it runs on the dense first layer only; a shift alone also moves the
sparse path's entries.

Translation by (dy, dx): ``shifted[r, c] = image[r - dy, c - dx]``, 0 (a blank pixel) where
``(r - dy, c - dx)`` falls outside the image. The shift applies to the whole image, before the
input transform keeps its pixels (so a crop keeps what the shift moved into its window). The
offsets of batch row b at (seed, epoch, step) are uniform in [-k, k] each, drawn from
``_row_seed(_stream_seed(seed, epoch, step, AUGMENT_STREAM), b)``: a counter-based seed like the
dropout masks', so runs repeat exactly, a resumed run draws the same offsets, and any thread can
gather any block of rows.

Shapes (legend in __init__.py): images (N, P) uint8 with P = height * width; out (B, D); rows
(B,) int64; pixel_index, scale, shift (D,): the input transform (input d reads pixel
pixel_index[d], ascending); input_of_pixel (P,) int64: the inverse map, -1 for a pixel no input
reads.
"""

import numpy as np

from .._jit import jit, jit_kernel
from ._checks import _check_gather
from ._dropout import _U64, _row_seed, _splitmix64, _stream_seed

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "AUGMENT_STREAM", "ELASTIC_NODES", "_elastic_node", "_gather_shifted", "_gather_warped",
    "_rotation", "_shift_offsets", "_shift_sparse", "elastic_nodes", "gather_shifted",
    "gather_warped", "input_of_pixel", "rotation_angles", "shift_offsets",
]

# the random stream of the offsets, apart from the dropout streams (0 = input, l + 1 = layer l)
AUGMENT_STREAM = 1 << 32


@jit
def _shift_offsets(state, row, k):
    # (dy, dx) of batch row `row` of the step whose stream seed is `state`, each in [-k, k]
    x = _row_seed(state, row)
    n = _U64(2 * k + 1)
    dy = np.int64(x % n) - k
    dx = np.int64((x >> _U64(32)) % n) - k
    return dy, dx


@jit_kernel
def _gather_shifted(out, images, rows, pixel_index, scale, shift, width, k, state, row0):
    # out[b, d] = shifted(images[rows[b]])[pixel_index[d]] * scale[d] + shift[d], the image of
    # batch row row0 + b moved by _shift_offsets(state, row0 + b, k); width: pixels per row.
    B, D = out.shape
    P = images.shape[1]
    height = P // width
    for b in range(B):
        dy, dx = _shift_offsets(state, row0 + b, k)
        img = images[rows[b]]
        o = out[b]
        r = 0
        c = 0
        prev = 0
        for d in range(D):
            p = pixel_index[d]
            if p >= prev:  # walk to pixel p from the last one (ascending: no division)
                c += p - prev
                while c >= width:
                    c -= width
                    r += 1
            else:
                r = p // width
                c = p - r * width
            prev = p
            sr = r - dy
            sc = c - dx
            u = 0
            if 0 <= sr < height and 0 <= sc < width:
                u = img[sr * width + sc]
            o[d] = u * scale[d] + shift[d]


@jit
def _rotation(state, row, max_angle):
    # (cos, sin) of batch row `row`'s angle, uniform in [-max_angle, max_angle] radians, from
    # bits of its own (the row's offsets keep theirs: a shift alone draws what it always drew)
    x = _splitmix64(_row_seed(state, row) ^ _U64(0x9E3779B97F4A7C15))
    u = np.float64(x >> _U64(11)) * (1.0 / 9007199254740992.0)  # [0, 1), 53 bits
    a = (2.0 * u - 1.0) * max_angle
    return np.cos(a), np.sin(a)


# The elastic distortion's random field: a displacement (dy, dx) drawn at each node of a
# coarse ELASTIC_NODES x ELASTIC_NODES grid spanning the image, uniform in [-a, a] pixels each,
# and interpolated bilinearly in between, so that neighbouring pixels move nearly together (a
# smooth field, as in Simard et al. 2003, whose Gaussian-smoothed field this approximates at a
# few hashes per image instead of a convolution).
ELASTIC_NODES = 5
_ELASTIC_KEY = 0xD1B54A32D192ED03  # the field's bits, apart from the angle's and the offsets'


@jit
def _elastic_seed(state, row):
    # the seed of batch row `row`'s elastic field (one per image; _elastic_node draws its nodes)
    return _splitmix64(_row_seed(state, row) ^ _U64(_ELASTIC_KEY))


@jit
def _elastic_node(seed, node, a):
    # (dy, dx) of the elastic field whose seed is `seed` (_elastic_seed) at `node`
    # (0 .. ELASTIC_NODES**2 - 1, row-major), each uniform in [-a, a): the two 32-bit halves of
    # one hash
    x = _splitmix64(seed ^ _U64(node))
    scale = 2.0 * a / 4294967296.0
    return (np.float64(x & _U64(0xFFFFFFFF)) * scale - a,
            np.float64(x >> _U64(32)) * scale - a)


@jit_kernel
def _gather_warped(out, images, rows, pixel_index, scale, shift, width, k, max_angle, elastic,
                   state, row0):
    # out[b, d] = moved(images[rows[b]])[pixel_index[d]] * scale[d] + shift[d], where the image
    # of batch row row0 + b is distorted by its elastic field e (_elastic_node, nodes' spacing
    # (height - 1) / (ELASTIC_NODES - 1) rows; elastic = 0: none), rotated about its centre by
    # its angle (_rotation; max_angle = 0: none) and moved by its offset (_shift_offsets; k = 0:
    # none): moved(p) = image(R(-a) (p - t - c) + c + e(p)), sampled bilinearly with 0 outside
    # the image (a float, not a whole pixel value).
    B, D = out.shape
    P = images.shape[1]
    height = P // width
    cy = 0.5 * (height - 1)
    cx = 0.5 * (width - 1)
    G = ELASTIC_NODES
    ny = (G - 1) / max(height - 1, 1)  # nodes per pixel, down and across
    nx = (G - 1) / max(width - 1, 1)
    for b in range(B):
        dy, dx = (0, 0) if k == 0 else _shift_offsets(state, row0 + b, k)
        co, si = (1.0, 0.0) if max_angle == 0.0 else _rotation(state, row0 + b, max_angle)
        eseed = _elastic_seed(state, row0 + b)
        img = images[rows[b]]
        o = out[b]
        cell = -1  # the grid cell whose four nodes' displacements are held below
        e00y = e00x = e01y = e01x = e10y = e10x = e11y = e11x = 0.0
        for d in range(D):
            p = pixel_index[d]
            r = p // width
            c = p - r * width
            y = r - dy - cy
            x = c - dx - cx
            sy = co * y - si * x + cy
            sx = si * y + co * x + cx
            if elastic > 0.0:
                gy = r * ny
                gx = c * nx
                i = min(int(gy), G - 2)
                j = min(int(gx), G - 2)
                if i * G + j != cell:  # a new cell ~4 times per image row (ascending pixels)
                    cell = i * G + j
                    e00y, e00x = _elastic_node(eseed, cell, elastic)
                    e01y, e01x = _elastic_node(eseed, cell + 1, elastic)
                    e10y, e10x = _elastic_node(eseed, cell + G, elastic)
                    e11y, e11x = _elastic_node(eseed, cell + G + 1, elastic)
                uy = gy - i
                ux = gx - j
                w00 = (1.0 - uy) * (1.0 - ux)
                w01 = (1.0 - uy) * ux
                w10 = uy * (1.0 - ux)
                w11 = uy * ux
                sy += w00 * e00y + w01 * e01y + w10 * e10y + w11 * e11y
                sx += w00 * e00x + w01 * e01x + w10 * e10x + w11 * e11x
            y0 = int(np.floor(sy))
            x0 = int(np.floor(sx))
            fy = sy - y0
            fx = sx - x0
            v = 0.0
            if 0 <= y0 < height:
                if 0 <= x0 < width:
                    v += (1.0 - fy) * (1.0 - fx) * img[y0 * width + x0]
                if 0 <= x0 + 1 < width:
                    v += (1.0 - fy) * fx * img[y0 * width + x0 + 1]
            if 0 <= y0 + 1 < height:
                if 0 <= x0 < width:
                    v += fy * (1.0 - fx) * img[(y0 + 1) * width + x0]
                if 0 <= x0 + 1 < width:
                    v += fy * fx * img[(y0 + 1) * width + x0 + 1]
            o[d] = v * scale[d] + shift[d]


def _check_move(out, images, rows, pixel_index, scale, shift, width, k):
    # the arguments of a gather that moves the images (see gather_batch for the first six)
    _check_gather(out, images, rows, pixel_index, scale, shift)
    if width < 1 or images.shape[1] % width:
        raise ValueError(f"width {width} does not divide the image size {images.shape[1]}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")


def gather_warped(out, images, rows, pixel_index, scale, shift, width, k, max_degrees, elastic,
                  seed, epoch, step, row0=0):
    """Like :func:`gather_shifted`, each image also rotated about its centre by its random
    angle of up to ``max_degrees`` either way and distorted by its elastic field of up to
    ``elastic`` pixels at the nodes, sampled bilinearly (see _gather_warped)."""
    _check_move(out, images, rows, pixel_index, scale, shift, width, k)
    if not (0.0 <= max_degrees and 0.0 <= elastic):
        raise ValueError(f"max_degrees and elastic must be >= 0, got {max_degrees}, {elastic}")
    _gather_warped(out, images, rows, pixel_index, scale, shift, width, k,
                   float(np.deg2rad(max_degrees)), float(elastic),
                   np.uint64(_stream_seed(seed, epoch, step, AUGMENT_STREAM)), row0)


def elastic_nodes(seed, epoch, step, n_rows, elastic, row0=0):
    """The elastic field's node displacements, (n_rows, 2, ELASTIC_NODES, ELASTIC_NODES)
    float64 (dy then dx, in pixels), that step ``step`` of ``epoch`` draws for batch rows
    ``row0 ..``: what the training loop applies, for tests and for looking at."""
    state = np.uint64(_stream_seed(seed, epoch, step, AUGMENT_STREAM))
    G = ELASTIC_NODES
    out = np.empty((n_rows, 2, G, G))
    for b in range(n_rows):
        eseed = np.uint64(_elastic_seed(state, row0 + b))
        for n in range(G * G):
            out[b, :, n // G, n % G] = _elastic_node(eseed, n, float(elastic))
    return out


def rotation_angles(seed, epoch, step, n_rows, max_degrees, row0=0):
    """The angles in degrees, (n_rows,), that step ``step`` of ``epoch`` rotates batch rows
    ``row0 ..`` by: what the training loop applies, for tests and for looking at."""
    state = np.uint64(_stream_seed(seed, epoch, step, AUGMENT_STREAM))
    rad = np.deg2rad(max_degrees)
    return np.array([np.degrees(np.arctan2(*_rotation(state, row0 + b, rad)[::-1]))
                     for b in range(n_rows)])


def gather_shifted(out, images, rows, pixel_index, scale, shift, width, k, seed, epoch, step,
                   row0=0):
    """Fill ``out`` (B, D) with the batch ``images[rows]`` (N, P) uint8, each image translated
    by its random offset of up to ``k`` pixels (see the module docstring) for (``seed``,
    ``epoch``, ``step``), batch rows numbered from ``row0``, then transformed as
    ``gather_batch`` does."""
    _check_move(out, images, rows, pixel_index, scale, shift, width, k)
    _gather_shifted(out, images, rows, pixel_index, scale, shift, width, k,
                    np.uint64(_stream_seed(seed, epoch, step, AUGMENT_STREAM)), row0)


def shift_offsets(seed, epoch, step, n_rows, k, row0=0):
    """The (dy, dx) offsets, (n_rows, 2) int64, that step ``step`` of ``epoch`` draws for batch
    rows ``row0 ..``: what the training loop applies, for tests and for looking at."""
    state = np.uint64(_stream_seed(seed, epoch, step, AUGMENT_STREAM))
    return np.array([_shift_offsets(state, row0 + b, k) for b in range(n_rows)],
                    dtype=np.int64).reshape(n_rows, 2)


def input_of_pixel(pixel_index, n_pixels):
    """The inverse of an input transform's pixel map: (P,) int64, input d at pixel
    pixel_index[d], -1 for a pixel no input reads."""
    inv = np.full(n_pixels, -1, dtype=np.int64)
    inv[np.asarray(pixel_index, dtype=np.int64)] = np.arange(len(pixel_index), dtype=np.int64)
    return inv


@jit_kernel
def _shift_sparse(bptr, bidx, bval, pixel_index, input_of_pixel, width, k, state, row0):
    # The sparse path's batch CSR (bptr (B+1,), bidx input indices, bval uint8), rewritten in
    # place so that row b holds its image moved by _shift_offsets(state, row0 + b, k): each
    # entry's input index is mapped to the input that reads its moved pixel, and entries moved
    # off the image or out of the kept pixels are dropped. The moved indices stay ascending
    # (one offset per row moves every pixel the same way), as the sparse kernels need.
    B = bptr.shape[0] - 1
    P = input_of_pixel.shape[0]
    height = P // width
    n = 0
    for b in range(B):
        start = bptr[b]
        end = bptr[b + 1]
        bptr[b] = n
        dy, dx = _shift_offsets(state, row0 + b, k)
        for j in range(start, end):
            p = pixel_index[bidx[j]]
            r = p // width
            c = p - r * width + dx
            r += dy
            if 0 <= r < height and 0 <= c < width:
                d = input_of_pixel[r * width + c]
                if d >= 0:
                    bidx[n] = d
                    bval[n] = bval[j]
                    n += 1
    bptr[B] = n
