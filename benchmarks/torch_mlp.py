"""The same network and training step in PyTorch (CPU), written the way its tutorials do.

``nn.Sequential(Linear, Sigmoid, ..., Linear)``, ``nn.CrossEntropyLoss`` (mean), plain
``torch.optim.SGD``; each mini-batch is indexed out of a uint8 tensor and converted to float32 / 255
inside the loop, as a DataLoader-free training script would. torch is imported lazily: importing
this module never fails, :func:`available` says whether torch can be used.
"""

import importlib.util

import numpy as np

from fastmlp.choices.schedules import steps_in_epoch


def available():
    """True when torch is installed."""
    return importlib.util.find_spec("torch") is not None


def _torch():
    import torch
    return torch


def build_model(sizes, flat_params=None, threads=None):
    """``nn.Sequential`` for layer ``sizes`` (D0, H1, ..., K) with sigmoid hidden layers.

    flat_params: initial weights in fastmlp's flat layout (each layer's W (D, H), then b (H,)),
    copied in so every framework starts from the same point. threads: torch.set_num_threads.
    """
    torch = _torch()
    from torch import nn

    if threads is not None:
        torch.set_num_threads(int(threads))
    layers = []
    for l, (D, H) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(D, H))
        if l < len(sizes) - 2:
            layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    if flat_params is not None:
        load_flat(model, flat_params)
    return model


def linears(model):
    return [m for m in model if isinstance(m, _torch().nn.Linear)]


def load_flat(model, flat_params):
    """Copy fastmlp-layout parameters into ``model`` (torch stores Linear weights as (H, D))."""
    torch = _torch()
    off = 0
    with torch.no_grad():
        for lin in linears(model):
            H, D = lin.weight.shape
            W = np.asarray(flat_params[off:off + D * H], dtype=np.float32).reshape(D, H)
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            off += D * H
            lin.bias.copy_(torch.from_numpy(np.asarray(flat_params[off:off + H], np.float32)))
            off += H
    if off != len(flat_params):
        raise ValueError(f"flat parameters have {len(flat_params)} values, the model {off}")


def to_flat(model):
    """The model's parameters as a flat float32 NumPy vector in fastmlp's layout."""
    parts = []
    for lin in linears(model):
        parts.append(lin.weight.detach().numpy().T.ravel())
        parts.append(lin.bias.detach().numpy().ravel())
    return np.concatenate(parts).astype(np.float32)


def train_epoch(model, optimizer, X_u8, y, batch, order, n_steps=None):
    """One epoch: for each mini-batch of ``order`` (N,) int64 tensor, index the uint8 images
    X_u8 (N, D0) and labels y (N,) int64 tensors, convert, forward, loss, backward, step.
    ``n_steps`` stops early (warm-up). Returns ``(loss sum, samples)``."""
    torch = _torch()
    loss_fn = torch.nn.CrossEntropyLoss()
    N = len(order)
    steps = steps_in_epoch(N, batch)
    if n_steps is not None:
        steps = min(n_steps, steps)
    model.train()
    loss_sum, samples = 0.0, 0
    for s in range(steps):
        rows = order[s * batch:(s + 1) * batch]
        xb = X_u8[rows].to(torch.float32).div_(255.0)
        yb = y[rows]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        b = len(rows)
        loss_sum += loss.item() * b
        samples += b
    return loss_sum, samples


def accuracy(model, X_u8, y, batch=1000):
    """Fraction of images (uint8 tensor (N, D0)) whose predicted class is the label."""
    torch = _torch()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(X_u8), batch):
            xb = X_u8[start:start + batch].to(torch.float32).div_(255.0)
            correct += int((model(xb).argmax(dim=1) == y[start:start + batch]).sum())
    return correct / max(1, len(X_u8))
