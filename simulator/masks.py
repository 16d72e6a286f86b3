"""Stuck-at masks: their layout, their validation, and what makes a PE faulty.

A chip's faults reach the simulator as one int32 array ``masks`` of shape
``(4, 2, R, C)``: per site (in :data:`simulator.SITES` order) an AND and an OR mask, a
register value ``v`` becoming ``(v & and) | or``. A register is *stuck* where its masks
are not the identity (``and == -1 and or == 0``); a PE is *faulty* when any of its
registers is stuck. This module is the one place those two definitions live.
"""

from __future__ import annotations

import numpy as np

from .config import ArrayConfig
from .errors import FaultMaskError
from .precision import SITES

__all__ = ["identity_masks", "check_masks", "stuck", "faulty_pes", "masks_of", "composed_act_masks"]


def identity_masks(cfg: ArrayConfig) -> np.ndarray:
    """Fault-free masks: ``(4, 2, R, C)`` int32 with AND = -1 and OR = 0 everywhere."""
    masks = np.zeros((len(SITES), 2, cfg.rows, cfg.cols), np.int32)
    masks[:, 0] = -1
    return masks


def stuck(and_mask: np.ndarray, or_mask: np.ndarray) -> np.ndarray:
    """Bool, elementwise: where a register's masks are not the identity (some bit stuck)."""
    return (and_mask != -1) | (or_mask != 0)


def faulty_pes(masks: np.ndarray) -> np.ndarray:
    """Bool ``(R, C)``: the PEs with at least one stuck register, of ``(4, 2, R, C)`` masks."""
    return stuck(masks[:, 0], masks[:, 1]).any(axis=0)


def composed_act_masks(act_masks: np.ndarray, live: np.ndarray):
    """The act masks a PE's activation has passed, composed along its row: ``(and, or)``, each
    int64 ``(R, C)``; PE ``(r, c)`` sees ``(x & and[r, c]) | or[r, c]`` for row input ``x``.

    Masks compose: ``((v & a1) | o1) & a2 | o2 == v & (a1 & a2) | ((o1 & a2) | o2)``. ``live``
    (bool ``(R, C)``) says which PEs' latches are in the path (a bypassed PE forwards its input).
    """
    R, C = live.shape
    cum_and = np.full((R, C), -1, np.int64)
    cum_or = np.zeros((R, C), np.int64)
    cut = live & stuck(act_masks[0], act_masks[1])
    for r, c in zip(*np.nonzero(cut)):  # in row-major order: each row left to right
        a2, o2 = int(act_masks[0, r, c]), int(act_masks[1, r, c])
        a, o = (int(cum_and[r, c - 1]), int(cum_or[r, c - 1])) if c > 0 else (-1, 0)
        cum_and[r, c:], cum_or[r, c:] = a & a2, (o & a2) | o2
    return cum_and, cum_or


def check_masks(cfg: ArrayConfig, masks: np.ndarray) -> None:
    """Raise :class:`FaultMaskError` unless ``masks`` are valid stuck-at masks for ``cfg``.

    Valid means: int32, shape ``(4, 2, R, C)``, and every mask sign-extended from its
    site's width (so a site's bits above its width follow its top bit).
    """
    want = (len(SITES), 2, cfg.rows, cfg.cols)
    if masks.shape != want:
        raise FaultMaskError(f"fault masks have shape {masks.shape}; this {cfg.rows}x{cfg.cols} array needs {want}.")
    if masks.dtype != np.int32:
        raise FaultMaskError(f"fault masks must have dtype int32; got {masks.dtype}.")
    for i, (site, bits) in enumerate(zip(SITES, cfg.precision.widths())):
        if bits < 32:
            sh = 32 - bits
            canon = (masks[i] << sh) >> sh
            if not np.array_equal(canon, masks[i]):
                raise FaultMaskError(
                    f"{site} masks must be sign-extended {bits}-bit patterns for {cfg.precision.name}."
                )


def masks_of(cfg: ArrayConfig, faults) -> np.ndarray:
    """A validated copy of the masks of a fault provider (e.g. a :class:`faults.FaultMap`).

    ``faults`` must have a numpy ``masks`` attribute. When it also states the array it
    was built for (a ``cfg`` attribute holding an :class:`ArrayConfig`), that array must
    have this precision (the shape is checked on the masks): masks built for another register width would act on
    the wrong bits (a stuck top bit of a 12-bit accumulator is bits 11-31 of an int32).
    """
    masks = getattr(faults, "masks", None)
    if not isinstance(masks, np.ndarray):
        raise FaultMaskError(
            f"faults must provide a numpy 'masks' array (e.g. a faults.FaultMap); got {type(faults).__name__}."
        )
    built_for = getattr(faults, "cfg", None)
    if isinstance(built_for, ArrayConfig) and built_for.precision != cfg.precision:
        raise FaultMaskError(
            f"the fault map was built for precision {built_for.precision.name}; this array computes "
            f"{cfg.precision.name}. Build the map with the array's ArrayConfig."
        )
    check_masks(cfg, masks)
    return masks.copy()
