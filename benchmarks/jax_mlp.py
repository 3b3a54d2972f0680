"""The same network and training in JAX (CPU), written the way a JAX user writes it for speed.

Parameters are a pytree (a list of ``(W, b)`` pairs, W (D, H) as in fastmlp's layout); the loss is
the mean cross-entropy of ``jax.nn.log_softmax`` of the logits, differentiated by ``jax.grad``. One
epoch is ONE jitted XLA program: ``jax.lax.scan`` over the full batches, the uint8 images and the
labels on the device, each batch gathered (``X[idx]``) and converted to float32 / 255 inside the
scan, then one more step for the ragged last batch (handled, not dropped); the parameters are
donated, so XLA updates them in place. XLA's CPU threads are set before jax is imported
(:func:`configure_threads`: ``PJRT_NPROC`` and ``XLA_FLAGS=--xla_cpu_multi_thread_eigen``).

jax is imported lazily: importing this module never fails; :func:`available` says whether jax can
be used (``pip install jax jaxlib``, the CPU build).
"""

import importlib.util
import os

import numpy as np


def available():
    """True when jax and jaxlib are installed."""
    return (importlib.util.find_spec("jax") is not None
            and importlib.util.find_spec("jaxlib") is not None)


def configure_threads(threads):
    """Pin XLA's CPU client to ``threads`` threads. Must run before jax is imported."""
    os.environ["PJRT_NPROC"] = str(int(threads))
    flag = "--xla_cpu_multi_thread_eigen=" + ("true" if threads > 1 else "false")
    others = [f for f in os.environ.get("XLA_FLAGS", "").split()
              if not f.startswith("--xla_cpu_multi_thread_eigen")]
    os.environ["XLA_FLAGS"] = " ".join(others + [flag])
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def unflatten(flat, sizes):
    """fastmlp's flat layout (each layer's W (D, H) then b (H,)) as a list of (W, b) arrays."""
    params, off = [], 0
    for D, H in zip(sizes[:-1], sizes[1:]):
        W = np.asarray(flat[off:off + D * H], np.float32).reshape(D, H)
        off += D * H
        b = np.asarray(flat[off:off + H], np.float32)
        off += H
        params.append((W, b))
    if off != len(flat):
        raise ValueError(f"flat parameters have {len(flat)} values, the model {off}")
    return params


def to_flat(params):
    return np.concatenate([np.concatenate([np.asarray(W).ravel(), np.asarray(b).ravel()])
                           for W, b in params]).astype(np.float32)


class Trainer:
    """Plain SGD on a sigmoid MLP: ``epoch(order)`` runs one whole epoch in one XLA call."""

    def __init__(self, sizes, flat_params, X_u8, y, batch, lr):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.sizes, self.batch, self.lr = tuple(sizes), int(batch), float(lr)
        self.X = jax.device_put(np.ascontiguousarray(X_u8))
        self.y = jax.device_put(np.asarray(y, np.int32))
        self.params = self._device_params(flat_params)
        self._programs = {}  # number of steps -> compiled epoch program

        def loss_fn(params, xb, yb):
            h = xb
            for W, b in params[:-1]:
                h = jax.nn.sigmoid(h @ W + b)
            W, b = params[-1]
            logp = jax.nn.log_softmax(h @ W + b)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        self._value_and_grad = jax.value_and_grad(loss_fn)

    def _device_params(self, flat):
        return [(self.jax.device_put(W), self.jax.device_put(b))
                for W, b in unflatten(flat, self.sizes)]

    def _program(self, n_rows):
        """The jitted, compiled program training on the first ``n_rows`` entries of an order."""
        if n_rows in self._programs:
            return self._programs[n_rows]
        jax, jnp = self.jax, self.jnp
        B, lr, vg = self.batch, self.lr, self._value_and_grad
        n_full, rem = divmod(n_rows, B)

        def epoch(params, X, y, order):
            def step(params, idx):
                xb = X[idx].astype(jnp.float32) * jnp.float32(1.0 / 255.0)
                loss, grads = vg(params, xb, y[idx])
                params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
                return params, loss * idx.shape[0]

            total = jnp.float32(0.0)
            if n_full:
                params, losses = jax.lax.scan(step, params, order[:n_full * B].reshape(n_full, B))
                total = total + losses.sum()
            if rem:
                params, last = step(params, order[n_full * B:n_rows])
                total = total + last
            return params, total

        order = jnp.zeros(n_rows, jnp.int32)
        compiled = jax.jit(epoch, donate_argnums=0).lower(self.params, self.X, self.y,
                                                          order).compile()
        self._programs[n_rows] = compiled
        return compiled

    def compile_epoch(self, n_rows):
        """Compile the program for an epoch of ``n_rows`` samples now (before any timing)."""
        self._program(n_rows)

    def epoch(self, order, n_rows=None):
        """Train on ``order[:n_rows]`` (default all); returns ``(loss sum, samples)``."""
        n_rows = len(order) if n_rows is None else min(int(n_rows), len(order))
        program = self._program(n_rows)
        order = self.jax.device_put(np.asarray(order[:n_rows], np.int32))
        self.params, total = program(self.params, self.X, self.y, order)
        return float(total), n_rows  # float() waits for the result

    def reset(self, flat):
        self.params = self._device_params(flat)

    def params_flat(self):
        return to_flat(self.params)

    def accuracy(self, X_u8, y, batch=1000):
        jnp = self.jnp
        correct = 0
        for start in range(0, len(X_u8), batch):
            h = jnp.asarray(X_u8[start:start + batch], jnp.float32) / 255.0
            for W, b in self.params[:-1]:
                h = self.jax.nn.sigmoid(h @ W + b)
            W, b = self.params[-1]
            pred = np.asarray(jnp.argmax(h @ W + b, axis=1))
            correct += int((pred == np.asarray(y[start:start + batch])).sum())
        return correct / max(1, len(X_u8))
