"""The compiled training loop: many SGD steps per call, all inside Numba.

Python-level overhead per step (a dozen calls, argument checks) is what makes frameworks slow at
small batches; here one call runs a whole chunk of steps (gather from uint8 images, forward,
fused softmax + cross-entropy, backward, update) and returns only the chunk's statistics. The
caller (``training/run.py``) chooses chunk sizes so progress bars and Ctrl-C stay responsive.

Threads (``Hyper.threads`` = T): every thread runs the same compiled worker over the whole chunk
(:func:`fastmlp.kernels.run_workers`), and each step has two phases with a barrier after each:

    1. thread t takes its block of the batch's rows, [b*t/T, b*(t+1)/T): gather, forward pass,
       loss, and every layer's output gradient dz (reading the weights, writing nothing shared);
    2. thread t takes its block of every weight's rows, [D*t/T, D*(t+1)/T), and of every bias's
       columns: the weight-gradient GEMM over the whole batch and the optimizer step of that
       block (fused into the GEMM for plain SGD).

So each thread's GEMMs are single-threaded BLAS calls on its own blocks, the element-wise work is
split too, no two threads write the same value, and the results do not depend on how the rows
were split (each row's dropout mask has its own seed). One fork per chunk of steps instead of
several per step, and no spinning BLAS or OpenMP workers competing with the threads doing work.

Buffers (allocated once by :class:`Workspace`, sized for the largest batch):

    x      (Bmax, D0)      the gathered, scaled input batch, and y (Bmax,) its labels
    bptr, bidx, bval       on the sparse path with input dropout or a shift: the batch's
                           surviving (moved) entries as CSR (uint8 values), and
                           iota (Bmax,) = 0, 1, 2, ...
    xd     (Bmax, D0)      the input after dropout, and xmask its mask
    z, h   (Bmax, sum H)   per layer: pre-activation z_l and f(z_l) (logits and probs for the last)
    a      (Bmax, sum H)   per layer: f(z_l) after dropout, and mask its mask
    dz     (Bmax, sum H)   per layer: the loss's gradient with respect to z_l
    part   (64, 2)         per thread: the loss sum and correct count of its rows (or images)
    grads  (P,)            gradients, laid out like the parameters
    opt1, opt2 (P,)        optimizer state (momentum velocity; Adam's two moments)

The sparse input path (``Hyper.sparse``): the training images arrive as CSR (see
``kernels.csr_inputs``) and the first layer visits only nonzero inputs, reading the batch's rows
of that CSR in place (with input dropout or a shift, from a per-step copy of the surviving,
moved entries, each thread's block of rows in its own stretch of bptr/bidx/bval). The first
layer's source travels as one tuple ``src = (rows, ptr, idx, val, scale, factor)``.

Plain SGD without weight decay (``Hyper.fused``): each layer's update is applied while its
weight gradient is computed (by BLAS with beta = 1 on dense layers, see ``kernels/_gemm.py``;
inside the sparse kernel on the sparse first layer), so no weight gradient is written or read.

Kernels and pieces: the workers call the step's pieces, and the pieces the kernels, through
their addresses (``jit_inner(by_address=True)``, ``_jit.jit_kernel``): each is compiled once,
on its own, and an edit to a kernel compiles that kernel again, not the loop.

User activations: the loop is the same cached code for every activation. A user's activation
arrives as ``hp.act_code == USER`` and the addresses of its own compiled pair
(``hp.act_forward``, ``hp.act_backward``), which the activation kernels call
(kernels/_user_activation.py); so a new activation compiles only its two small callbacks,
never the loop.
"""

import numpy as np

from .. import kernels as K
from .._jit import jit_inner, jit_worker
from ..kernels import ADAM, MOMENTUM, SGD, _barrier, _gemm_tn


CLIP_CHUNK = 4096  # max-norm: weights updated per piece (float32: 16 KB), squares read in L1


@jit_inner
def _view(buf, offset, rows, cols):
    # (rows, cols) C-contiguous view of the flat buffer starting at offset
    return buf[offset:offset + rows * cols].reshape((rows, cols))


@jit_inner(by_address=True)
def _rows_forward(ws, params, layout, r0, r1, hp, epoch, step, src):
    # Forward pass of batch rows r0 .. r1-1, already gathered into ws.x, or if hp.sparse read
    # through src = (rows, ptr, idx, val, scale, factor) for exactly these rows. Dropout masks
    # come from stream (epoch, step, layer), one seed per batch row (K._row_seed), so they do
    # not depend on how the rows are split between threads. Evaluation passes an hp with zero
    # dropout rates and sparse off. Returns the last layer's index.
    L = layout.shape[0]
    D0 = layout[0, 2]
    n = r1 - r0
    inp = _view(ws.x.ravel(), r0 * D0, n, D0)
    if hp.dropout_input > 0.0 and not hp.sparse:
        xd = _view(ws.xd.ravel(), r0 * D0, n, D0)
        xmask = _view(ws.xmask.ravel(), r0 * D0, n, D0)
        state = K._stream_seed(hp.seed, epoch, step, K.INPUT_STREAM)
        for i in range(n):
            K._dropout_forward(xd[i], xmask[i], inp[i], hp.dropout_input,
                               K._row_seed(state, r0 + i))
        inp = xd
    for l in range(L):
        w_off, b_off, D, H = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        off = ws.act_offsets[l] + r0 * H
        z = _view(ws.z, off, n, H)
        if l == 0 and hp.sparse:
            rows, ptr, idx, val, scale, factor = src
            K._sparse_dense_forward(z, rows, ptr, idx, val, scale, factor,
                                    _view(params, w_off, D, H), params[b_off:b_off + H])
        else:
            K._dense_forward(z, inp, _view(params, w_off, D, H), params[b_off:b_off + H])
        if l == L - 1:
            break
        h = _view(ws.h, off, n, H)
        K._activation_forward(h.ravel(), z.ravel(), hp.act_code, hp.act_param, hp.act_forward)
        if hp.dropout > 0.0:
            a = _view(ws.a, off, n, H)
            mask = _view(ws.mask, off, n, H)
            state = K._stream_seed(hp.seed, epoch, step, l + 1)
            for i in range(n):
                K._dropout_forward(a[i], mask[i], h[i], hp.dropout, K._row_seed(state, r0 + i))
            inp = a
        else:
            inp = h
    return L - 1


@jit_inner(by_address=True)
def _rows_loss_backward(ws, params, layout, last, r0, r1, b, hp):
    # Phase 1, after _rows_forward, for batch rows r0 .. r1-1 of a batch of b (labels in ws.y):
    # the loss and every layer's output gradient dz (the weights are not touched, so all threads
    # read the same weights). Returns (loss sum, correct) of these rows; a non-finite loss
    # returns at once (the step will not be applied).
    n = r1 - r0
    Kc = layout[last, 3]
    off = ws.act_offsets[last] + r0 * Kc
    probs = _view(ws.h, off, n, Kc)
    loss, ok = K._softmax_xent_forward(probs, _view(ws.z, off, n, Kc), ws.y[r0:r1],
                                       hp.label_smoothing)
    if not np.isfinite(loss):
        return loss, ok
    K._softmax_xent_backward(_view(ws.dz, off, n, Kc), probs, ws.y[r0:r1], 1.0 / b,
                             hp.label_smoothing)
    for l in range(last, 0, -1):
        w_off, D, H = layout[l, 0], layout[l, 2], layout[l, 3]
        prev = ws.act_offsets[l - 1] + r0 * D
        dinp = _view(ws.dz, prev, n, D)
        K._dense_backward_input(dinp, _view(ws.dz, ws.act_offsets[l] + r0 * H, n, H),
                                _view(params, w_off, D, H))
        if hp.dropout > 0.0:
            K._dropout_backward(dinp.ravel(), dinp.ravel(), _view(ws.mask, prev, n, D).ravel())
        K._activation_backward(dinp.ravel(), dinp.ravel(), _view(ws.z, prev, n, D).ravel(),
                               _view(ws.h, prev, n, D).ravel(), hp.act_code, hp.act_param,
                               hp.act_backward)
    return loss, ok


@jit_inner(by_address=True)
def _segment(ws, u, T, b, rows, csr_ptr, csr_idx, csr_val, scale, hp):
    # The sparse first layer's source for thread u's block of rows, with the block's bounds:
    # the data set's CSR read in place, or with input dropout or a shift the block's own copy
    # of the surviving, moved entries (local rows 0.., its own stretch of bptr/bidx/bval).
    D0 = ws.x.shape[1]
    r0 = b * u // T
    r1 = b * (u + 1) // T
    n = r1 - r0
    if hp.dropout_input > 0.0 or hp.shift_max > 0:
        p0 = r0 + u
        src = (ws.iota[:n], ws.bptr[p0:p0 + n + 1], ws.bidx[r0 * D0:r1 * D0],
               ws.bval[r0 * D0:r1 * D0], scale, 1.0 / (1.0 - hp.dropout_input))
    else:
        src = (rows[r0:r1], csr_ptr, csr_idx, csr_val, scale, 1.0)
    return src, r0, r1


@jit_inner(by_address=True)
def _update_block(t, T, ws, params, layout, b, rows, hp, lr, step_t, csr_ptr, csr_idx, csr_val,
                  scale):
    # Phase 2 of a step: thread t's share of every layer's update, from the dz of phase 1. It
    # owns rows [D*t/T, D*(t+1)/T) of each weight (D, H) and columns [H*t/T, H*(t+1)/T) of each
    # bias, so no two threads write the same parameter. With hp.fused (plain SGD, no weight
    # decay) the step is applied inside the gradient's GEMM (BLAS beta = 1), or inside the
    # sparse kernel; otherwise the gradient block is written to ws.grads and the optimizer
    # updates that block at once, while it is in cache. With hp.max_norm, also this thread's
    # share of each unit's squared incoming norm, into its row of ws.norms (_clip_block).
    L = layout.shape[0]
    clip = hp.max_norm > 0.0
    hoff = 0
    for l in range(L):
        w_off, b_off, D, H = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
        d0, d1 = D * t // T, D * (t + 1) // T
        h0, h1 = H * t // T, H * (t + 1) // T
        dout = _view(ws.dz, ws.act_offsets[l], b, H)
        if l == 0:
            inp = _view((ws.xd if hp.dropout_input > 0.0 else ws.x).ravel(), np.int64(0), b, D)
        else:
            prev = ws.act_offsets[l - 1]
            inp = _view(ws.a if hp.dropout > 0.0 else ws.h, prev, b, D)
        if hp.fused:
            target, bias_target, alpha, beta = params, params, -lr, 1.0
        else:
            target, bias_target, alpha, beta = ws.grads, ws.grads, 1.0, 0.0
        if l == 0 and hp.sparse:
            block = _view(target, w_off, D, H)
            if not hp.fused:
                block[d0:d1] = 0.0
            for u in range(T):
                src, r0, r1 = _segment(ws, u, T, b, rows, csr_ptr, csr_idx, csr_val, scale, hp)
                rws, ptr, idx, val, sc, factor = src
                K._sparse_dense_backward_params(block, dout[r0:r1], rws, ptr, idx, val, sc,
                                                factor, alpha, d0, d1)
        else:
            _gemm_tn(_view(target, w_off + d0 * H, d1 - d0, H), inp, d0, dout, alpha,
                          beta)
        K._bias_backward(bias_target[b_off:b_off + H], dout, alpha, beta, h0, h1)
        if clip:  # this thread's share of each unit's squared norm, after the update
            sq = ws.norms[t, hoff:hoff + H]
            sq[:] = 0.0
        if not hp.fused:
            if hp.weight_decay > 0.0:
                K._add_weight_decay(ws.grads[w_off + d0 * H:w_off + d1 * H],
                                    params[w_off + d0 * H:w_off + d1 * H], hp.weight_decay)
            # the optimizer step on this thread's weight rows, then bias columns (called here,
            # not through a helper: each level of jitted calls costs compile time). One branch
            # per row of optimizers.OPTIMIZERS, on the row's code, calling the row's kernel as
            # kernel(params, *state, grads, lr, *hyper[, t]): Numba cannot call through a
            # table of functions (first-class functions break caching and cost speed). With
            # max-norm the rows go a few at a time (16 KB, in L1), their squares added while
            # they are in cache
            per = max(1, CLIP_CHUNK // H) if clip else max(1, d1 - d0)
            n_w = -(-(d1 - d0) // per)
            for c in range(n_w + 1):
                lo = w_off + (d0 + c * per) * H
                hi = w_off + min(d0 + (c + 1) * per, d1) * H
                if c == n_w:
                    lo, hi = b_off + h0, b_off + h1
                p, g = params[lo:hi], ws.grads[lo:hi]
                if hp.optimizer == SGD:
                    K._sgd_update(p, g, lr)
                elif hp.optimizer == MOMENTUM:
                    K._momentum_update(p, ws.opt1[lo:hi], g, lr, hp.momentum, hp.nesterov)
                elif hp.optimizer == ADAM:
                    K._adam_update(p, ws.opt1[lo:hi], ws.opt2[lo:hi], g, lr, hp.beta1, hp.beta2,
                                   hp.eps, step_t)
                if clip and c < n_w:
                    K._add_column_squares(sq, _view(params, lo, (hi - lo) // H, H))
        elif clip:  # the update was inside the GEMM: one pass over the rows for their squares
            K._add_column_squares(sq, _view(params, w_off + d0 * H, d1 - d0, H))
        hoff += H


@jit_inner(by_address=True)
def _clip_block(t, T, ws, params, layout, hp):
    # The max-norm constraint, after every thread's _update_block and a barrier: each unit's
    # rescaling factor from all threads' shares of its squared norm (ws.norms[:T]), then thread
    # t's rows of every layer's weights rescaled (a pass only over layers with a unit to clip)
    hoff = 0
    for l in range(layout.shape[0]):
        w_off, D, H = layout[l, 0], layout[l, 2], layout[l, 3]
        d0, d1 = D * t // T, D * (t + 1) // T
        f = ws.factors[t, hoff:hoff + H]
        if K._max_norm_factors(f, ws.norms[:T, hoff:hoff + H], hp.max_norm) and d1 > d0:
            K._scale_columns(_view(params, w_off + d0 * H, d1 - d0, H), f)
        hoff += H


@jit_worker
def _train_worker(t, T, sync, params, ws, layout, hp, images, labels, order, pixel_index, scale,
                  shift, input_of_pixel, csr_ptr, csr_idx, csr_val, batch, first_step, n_steps,
                  lrs, epoch, t0):
    # Thread t of T runs steps first_step .. first_step + n_steps - 1 of an epoch whose sample
    # order is `order` (N,), batches of `batch` rows (the last one may be shorter), learning
    # rate lrs[s]; t0 counts the optimizer steps before this call (Adam's bias correction). On
    # the sparse path the images come as CSR (csr_ptr, csr_idx, csr_val), `images` unread.
    # With hp.shift_max > 0 each image is moved by its random offset while it is gathered
    # (kernels/_augment.py; input_of_pixel is the transform's inverse map), with
    # hp.rotate_max > 0 also rotated, with hp.elastic_max > 0 also distorted (dense path only);
    # input_of_pixel is None when none of them is on (moves_images(hp) is False).
    # Each step: phase 1 on this thread's block of the batch's rows (gather, forward, loss,
    # output gradients), barrier, phase 2 on its block of the parameters, barrier (sync is the
    # barrier's state, see kernels/_sync.py). Returns (loss sum, correct, samples, bad_step),
    # the same in every thread: bad_step >= 0 is the step whose loss was not finite; training
    # stops there, before that step's update.
    N = order.shape[0]
    D0 = layout[0, 2]
    loss_sum = 0.0
    correct = 0
    samples = 0
    sense = np.int64(0)  # not a literal 0: see K.INPUT_STREAM
    for s in range(first_step, first_step + n_steps):
        start = s * batch
        b = min(batch, N - start)
        if b <= 0:
            break
        rows = order[start:start + b]
        src, r0, r1 = _segment(ws, t, T, b, rows, csr_ptr, csr_idx, csr_val, scale, hp)
        loss, ok = 0.0, 0
        if r1 > r0:
            for i in range(r0, r1):
                ws.y[i] = labels[rows[i]]
            xb = _view(ws.x.ravel(), r0 * D0, r1 - r0, D0)
            # input_of_pixel is None in a run that moves no image: Numba then prunes the
            # augmentation branches and never compiles their kernels (2 s of a cold start)
            if input_of_pixel is not None and not hp.sparse and (hp.rotate_max > 0.0
                                                                 or hp.elastic_max > 0.0):
                K._gather_warped(xb, images, rows[r0:r1], pixel_index, scale, shift,
                                 hp.image_width, hp.shift_max, hp.rotate_max, hp.elastic_max,
                                 K._stream_seed(hp.seed, epoch, s, K.AUGMENT_STREAM), r0)
            elif input_of_pixel is not None and not hp.sparse and hp.shift_max > 0:
                K._gather_shifted(xb, images, rows[r0:r1], pixel_index, scale, shift,
                                  hp.image_width, hp.shift_max,
                                  K._stream_seed(hp.seed, epoch, s, K.AUGMENT_STREAM), r0)
            elif not hp.sparse:
                K._gather_batch(xb, images, rows[r0:r1], pixel_index, scale, shift)
            elif hp.dropout_input > 0.0 or hp.shift_max > 0:
                _, ptr, idx, val, _, _ = src
                K._gather_sparse(ptr, idx, val, csr_ptr, csr_idx, csr_val, rows[r0:r1],
                                 hp.dropout_input,
                                 K._stream_seed(hp.seed, epoch, s, K.INPUT_STREAM), r0)
                if input_of_pixel is not None and hp.shift_max > 0:
                    K._shift_sparse(ptr, idx, val, pixel_index, input_of_pixel, hp.image_width,
                                    hp.shift_max,
                                    K._stream_seed(hp.seed, epoch, s, K.AUGMENT_STREAM), r0)
            last = _rows_forward(ws, params, layout, r0, r1, hp, epoch, s, src)
            loss, ok = _rows_loss_backward(ws, params, layout, last, r0, r1, b, hp)
        ws.part[t, 0] = loss
        ws.part[t, 1] = ok
        sense = _barrier(sync, T, sense)
        loss = 0.0
        ok = 0
        for u in range(T):
            loss += ws.part[u, 0]
            ok += int(ws.part[u, 1])
        if not np.isfinite(loss):
            return loss_sum, correct, samples, s
        _update_block(t, T, ws, params, layout, b, rows, hp, lrs[s], t0 + s - first_step + 1,
                      csr_ptr, csr_idx, csr_val, scale)
        if hp.max_norm > 0.0:  # every thread's share of the norms is in: rescale its rows
            sense = _barrier(sync, T, sense)
            _clip_block(t, T, ws, params, layout, hp)
        sense = _barrier(sync, T, sense)
        loss_sum += loss
        correct += ok
        samples += b
    return loss_sum, correct, samples, -1


@jit_worker
def _evaluate_worker(t, T, pred, probs_out, params, ws, layout, hp, images, labels, pixel_index,
                     scale, shift, batch, want_probs):
    # Thread t of T: the forward pass over its share [N*t/T, N*(t+1)/T) of the N images (N, P)
    # uint8, in batches of up to `batch` rows held in its block of the workspace's rows, with hp
    # from eval_hyper (no dropout, dense input). Writes pred (N,) and, if want_probs, probs_out
    # (N, K); leaves (loss sum, correct) in ws.part[t] (labels may be empty).
    N = images.shape[0]
    L = layout.shape[0]
    Kc = layout[L - 1, 3]
    Bmax = ws.x.shape[0]
    lo, hi = N * t // T, N * (t + 1) // T
    w0 = Bmax * t // T
    cap = max(1, min(batch, Bmax * (t + 1) // T - w0))
    have_labels = labels.shape[0] == N
    loss_sum = 0.0
    correct = 0
    rows = ws.iota[w0:w0 + cap].copy()
    for start in range(lo, hi, cap):
        n = min(cap, hi - start)
        for i in range(n):
            rows[i] = start + i
        K._gather_batch(_view(ws.x.ravel(), w0 * layout[0, 2], n, layout[0, 2]), images,
                        rows[:n], pixel_index, scale, shift)
        src = (rows[:n], ws.bptr, ws.bidx, ws.bval, scale, 1.0)  # not read: hp is dense
        # epoch and step are not read either (no dropout); variables, not the constant 0: Numba
        # compiles a call with a constant argument as a copy typed on that literal value, and
        # with variables this call shares the training loop's compiled _rows_forward
        last = _rows_forward(ws, params, layout, w0, w0 + n, hp, hp.seed, start, src)
        off = ws.act_offsets[last] + w0 * Kc
        probs = _view(ws.h, off, n, Kc)
        if have_labels:
            loss, ok = K._softmax_xent_forward(probs, _view(ws.z, off, n, Kc),
                                               labels[start:start + n], hp.label_smoothing)
            loss_sum += loss
            correct += ok
        else:  # no labels: probabilities only, scored against class 0
            ws.y[w0:w0 + n] = 0
            K._softmax_xent_forward(probs, _view(ws.z, off, n, Kc), ws.y[w0:w0 + n],
                                    hp.label_smoothing)
        for i in range(n):
            best = 0
            for k in range(1, Kc):
                if probs[i, k] > probs[i, best]:
                    best = k
            pred[start + i] = best
            if want_probs:
                for k in range(Kc):
                    probs_out[start + i, k] = probs[i, k]
    ws.part[t, 0] = loss_sum
    ws.part[t, 1] = correct
