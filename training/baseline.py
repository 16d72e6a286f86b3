"""Float training and evaluation of the model zoo, with an on-disk cache of pretrained weights."""

from __future__ import annotations

import copy
import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fileio import atomic_write
from mapping import check_cpu_numerics, one_thread

from .data import Dataset
from .models import MODELS, build_model

__all__ = ["train", "TrainState", "evaluate", "pretrained", "model_digest", "cache_dir_default", "DEFAULT_EPOCHS",
           "DEFAULT_LRS", "CACHE_VERSION"]

CACHE_VERSION = 4  # bump when training or the models change so old cache files are ignored
# (2: one thread; 3: baseline CPU code paths, mapping/numerics.py)
DEFAULT_EPOCHS = {"mlp": 30, "lenet5": 60, "vgg": 20, "vit": 40}
DEFAULT_LR = 3e-3
#: Learning rates of :func:`pretrained` for models that do not train best at :data:`DEFAULT_LR`
#: (the ViT, 40 epochs on digits: 98.0% at 1e-3, 95.6% at 3e-3; on MNIST its test accuracy swings
#: by a few points from epoch to epoch at 1.5e-3 and more).
DEFAULT_LRS = {"vit": 1e-3}
DEFAULT_BATCH_SIZE = 32


@dataclass
class TrainState:
    """Where a run of :func:`train` stands: optimizer steps done and the optimizer's state.

    A run resumed from the state another run ended in is bit for bit the longer run:
    the model's weights come from that run, the Adam moments from ``optimizer``, and the
    batch order is replayed from the seed up to ``step``.
    """

    step: int = 0
    optimizer: dict | None = None


def train(model: nn.Module, dataset: Dataset, epochs: float = 10, lr: float = DEFAULT_LR,
          batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, progress: bool = False,
          after_step=None, grad_mask=None, state: TrainState | None = None) -> tuple[nn.Module, list[float]]:
    """Train ``model`` in place on ``dataset.x_train`` with Adam and cross-entropy.

    Deterministic on CPU for a given ``seed``: each epoch's shuffle comes from a
    ``torch.Generator`` seeded with ``seed``, the global RNG is left untouched, and torch
    runs on one intra-op thread (restored afterwards): float sums split over threads
    depend on their number, so training on 1 or 8 cores would give other weights.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (left in train mode).
    dataset : Dataset
        Training data (``x_train``, ``y_train``).
    epochs : float
        Passes over the data; may be fractional, counted in batches:
        ``round(epochs * ceil(N / batch_size))`` optimizer steps (``0.5`` = half the batches of
        one epoch). ``0`` trains nothing.
    lr : float
        Adam learning rate.
    batch_size : int
        Images per optimizer step (the last batch of an epoch may be smaller).
    seed : int
        Seed of the shuffling generator.
    progress : bool
        Show a tqdm bar over the steps.
    after_step : callable, optional
        ``after_step(model)`` is called after every optimizer step, e.g. to clamp or re-impose
        weights that a faulty chip cannot change.
    grad_mask : dict of str to Tensor, optional
        Parameter name (as in ``model.named_parameters()``) -> tensor broadcastable to the
        parameter; each gradient is multiplied by its mask before the step. With this fresh
        Adam optimizer, entries whose mask is always 0 are never updated.
    state : TrainState, optional
        Resume from it when its ``step`` is above 0 (the model must hold the weights of
        that step; ``epochs`` is the total of the longer run, not what remains); it is
        updated to the end of this run.

    Returns
    -------
    model : torch.nn.Module
        The same object, trained.
    losses : list of float
        Mean training loss of each (possibly partial) epoch.
    """
    check_cpu_numerics()
    with one_thread():
        return _train(model, dataset, epochs, lr, batch_size, seed, progress, after_step, grad_mask, state)


def _train(model, dataset, epochs, lr, batch_size, seed, progress, after_step, grad_mask, state):
    from tqdm.auto import tqdm

    if not (isinstance(epochs, (int, float)) and epochs >= 0):
        raise ValueError(f"epochs must be a number >= 0; got {epochs!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size}.")
    params = dict(model.named_parameters())
    masks = {}
    for name, mask in (grad_mask or {}).items():
        if name not in params:
            raise ValueError(f"grad_mask names unknown parameter {name!r}; parameters are {', '.join(params)}.")
        masks[name] = torch.as_tensor(mask, dtype=params[name].dtype)
    x, y = dataset.x_train, dataset.y_train
    per_epoch = math.ceil(len(x) / batch_size)
    n_steps = round(epochs * per_epoch)
    start = state.step if state is not None else 0
    if start > n_steps:
        raise ValueError(f"cannot resume at step {start} a run of {n_steps} steps ({epochs} epochs).")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if start:  # a copy: Adam updates its loaded moments in place, and the state may be resumed again
        opt.load_state_dict(copy.deepcopy(state.optimizer))
    for _ in range(start // per_epoch + (1 if start % per_epoch else 0)):  # replay the batch order
        order = torch.randperm(len(x), generator=gen)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses, epoch_sum, epoch_n = [], 0.0, 0
    bar = tqdm(total=n_steps - start, desc="training", unit="batch", disable=not progress)
    for step in range(start, n_steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(x), generator=gen)
        idx = order[(step % per_epoch) * batch_size:][:batch_size]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        for name, mask in masks.items():
            if params[name].grad is not None:
                params[name].grad.mul_(mask)
        opt.step()
        if after_step is not None:
            after_step(model)
        epoch_sum, epoch_n = epoch_sum + loss.item(), epoch_n + 1
        if epoch_n == per_epoch or step == n_steps - 1:
            losses.append(epoch_sum / epoch_n)
            epoch_sum, epoch_n = 0.0, 0
        bar.update()
    bar.close()
    if state is not None:
        state.step, state.optimizer = n_steps, opt.state_dict()
    return model, losses


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, in eval mode without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        Its train/eval mode is restored afterwards.
    x, y : torch.Tensor
        Inputs ``(N, ...)`` and int labels ``(N,)``.
    batch_size : int
        Inputs per forward pass.

    Returns
    -------
    float
        Fraction of correct predictions in ``[0, 1]`` (0.0 for no inputs).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}.")
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(x) if len(x) else 0.0


def model_digest(model: nn.Module) -> str:
    """sha256 over a model's state dict (names and values): which weights a result is of."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_dir_default() -> Path:
    """``$EFAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/efat-sim``, else ``~/.cache/efat-sim``."""
    if os.environ.get("EFAT_CACHE_DIR"):
        return Path(os.environ["EFAT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "efat-sim"


def _default_lr(name: str) -> float:
    return DEFAULT_LRS.get(name, DEFAULT_LR)


def _cache_key(name: str, dataset: Dataset, seed: int, epochs: float) -> str:
    text = "|".join(map(str, (name, dataset.fingerprint(), seed, float(epochs), _default_lr(name),
                              DEFAULT_BATCH_SIZE, CACHE_VERSION)))
    return hashlib.sha256(text.encode()).hexdigest()


def _fresh_model(name: str, dataset: Dataset, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        return build_model(name, dataset.input_shape, dataset.n_classes)


def pretrained(name: str, dataset: Dataset, seed: int = 0, epochs: float | None = None,
               cache_dir=None, progress: bool = False) -> nn.Module:
    """A zoo model trained on ``dataset``, loaded from the cache or trained once and cached.

    Training uses Adam at the model's entry of :data:`DEFAULT_LRS`, else :data:`DEFAULT_LR`,
    with batches of :data:`DEFAULT_BATCH_SIZE`.

    The cache file is ``<cache_dir>/<name>-<key>.pt`` where ``key`` is a sha256 of the model
    name, ``dataset.fingerprint()``, ``seed``, ``epochs``, the learning rate, the batch size and
    :data:`CACHE_VERSION`. It is written atomically; an unreadable file is trained over with
    a warning.

    Parameters
    ----------
    name : str
        One of :data:`training.models.MODELS`.
    dataset : Dataset
        Training data; also sets the input shape and number of classes.
    seed : int
        Seeds the weight initialisation and the shuffling.
    epochs : float, optional
        Defaults to :data:`DEFAULT_EPOCHS` for the model.
    cache_dir : str or os.PathLike, optional
        Defaults to :func:`cache_dir_default`.
    progress : bool
        Show a progress bar while training.

    Returns
    -------
    torch.nn.Module
        The trained model, in eval mode.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    epochs = DEFAULT_EPOCHS[name] if epochs is None else epochs
    folder = Path(cache_dir).expanduser() if cache_dir is not None else cache_dir_default()
    path = folder / f"{name}-{_cache_key(name, dataset, seed, epochs)}.pt"
    if path.exists():
        try:
            model = _fresh_model(name, dataset, seed)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception as e:  # any unreadable or mismatched file is retrained over
            warnings.warn(f"ignoring unreadable cache file {path} ({type(e).__name__}: {e}); retraining.",
                          stacklevel=2)
    model = _fresh_model(name, dataset, seed)
    train(model, dataset, epochs=epochs, lr=_default_lr(name), batch_size=DEFAULT_BATCH_SIZE, seed=seed,
          progress=progress)
    with atomic_write(path, binary=True) as f:
        torch.save(model.state_dict(), f)
    return model.eval()
