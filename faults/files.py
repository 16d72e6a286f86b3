"""The ``.npz`` files of fault maps and populations: writing, and reading that never
loads a damaged or foreign file as something else.

Every file is a NumPy ``.npz`` (a zip of ``.npy`` arrays, no pickles) with a header:
``kind`` (``"efat.FaultMap"`` or ``"efat.Population"``), ``version`` (2), ``shape``
(``[R, C]``), ``widths`` (the register widths of the precision, ``SITES`` order) and
``precision`` (the precision's JSON description, e.g. ``{"kind": "float", "format":
"bf16"}``), then the kind's arrays (see ``docs/semantics.md``, "Files"). Version 1 files
(before float precisions) have no ``precision`` and are read as integer precisions of
their widths. Reading checks the zip,
every array's type and shape, the header, and then the contents; any failure is a
:class:`FaultFileError` naming the path.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from fileio import atomic_write
from simulator import SITES, ArrayConfig, IntPrecision, precision_from_dict, stuck

from .errors import FaultError, FaultFileError

__all__ = ["write_npz", "read_npz", "decode_population", "VERSION"]

VERSION = 2
_HEADER = ("kind", "version", "shape", "widths")


def write_npz(path, kind: str, cfg: ArrayConfig, **arrays) -> None:
    """Write a versioned ``.npz`` atomically."""
    if not os.fspath(path).endswith(".npz"):
        raise FaultFileError(path, "fault files end in .npz; choose a name that does.")
    header = dict(kind=np.array(kind), version=np.array(VERSION), shape=np.array(cfg.shape, np.int64),
                  widths=np.array(cfg.precision.widths(), np.int64),
                  precision=np.array(json.dumps(cfg.precision.to_dict(), sort_keys=True)))
    with atomic_write(path, binary=True) as f:
        np.savez_compressed(f, **header, **arrays)


def read_npz(path, kind: str, keys) -> tuple[dict, ArrayConfig]:
    """Read and check a file written by :func:`write_npz`; returns ``(arrays, cfg)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FaultFileError(path, "no such file.")
    if os.path.isdir(path):
        raise FaultFileError(path, "is a folder, not a file.")
    if not zipfile.is_zipfile(path):
        raise FaultFileError(path, f"not a readable .npz file (not a zip archive); expected a {kind} file.")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - whatever a damaged archive raises, it is a bad file
        raise FaultFileError(path, f"not a readable .npz file, the archive is damaged ({type(e).__name__}: {e}).") from None
    missing = [k for k in (*_HEADER, *keys) if k not in data]
    if missing:
        raise FaultFileError(path, f"not a {kind} file (missing {', '.join(missing)}).")
    found = data["kind"]
    if found.dtype.kind != "U" or found.ndim != 0:
        raise FaultFileError(path, f"not a {kind} file (bad kind field).")
    if str(found) != kind:
        raise FaultFileError(path, f"holds a {found}, expected a {kind}.")
    version = data["version"]
    if version.dtype.kind not in "iu" or version.shape != ():
        raise FaultFileError(path, f"bad version field {version.tolist()!r}; this release reads version {VERSION}.")
    if int(version) not in (1, VERSION):
        raise FaultFileError(path, f"format version {int(version)}; this release reads versions 1 and {VERSION}.")
    shape, widths = data["shape"], data["widths"]
    if shape.dtype.kind not in "iu" or shape.shape != (2,) or widths.dtype.kind not in "iu" or widths.shape != (4,):
        raise FaultFileError(path, f"bad array header (shape {shape.tolist()!r}, widths {widths.tolist()!r}).")
    try:
        if int(version) == 1:
            precision = IntPrecision(*(int(w) for w in widths))
        else:
            precision = precision_from_dict(_json_field(path, data, "precision"))
        cfg = ArrayConfig(int(shape[0]), int(shape[1]), precision)
    except ValueError as e:
        raise FaultFileError(path, f"bad array header ({e}).") from None
    if tuple(int(w) for w in widths) != cfg.precision.widths():
        raise FaultFileError(path, f"register widths {widths.tolist()} disagree with precision {cfg.precision.name} "
                             f"({list(cfg.precision.widths())}).")
    return data, cfg


def _json_field(path, data, key):
    field = data.get(key)
    if field is None:
        raise FaultFileError(path, f"missing {key} field (version {VERSION} files have one).")
    try:
        if field.dtype.kind != "U" or field.ndim != 0:
            raise ValueError("not a string")
        return json.loads(str(field))
    except ValueError:
        raise FaultFileError(path, f"bad {key} field (not a JSON description).") from None


def decode_population(cfg: ArrayConfig, data: dict):
    """Validate the arrays of a saved population; returns ``(ids, rcs, masks, params)``
    per chip, as :class:`faults.Population` holds them. Raises :class:`FaultError`."""
    ids, offsets, rc, masks = data["ids"], data["offsets"], data["pe_rc"], data["pe_masks"]
    if ids.dtype.kind != "U" or ids.ndim != 1 or len(ids) == 0:
        raise FaultError(f"ids must be a non-empty 1-d string array; got {ids.dtype} {ids.shape}.")
    n = len(ids)
    if offsets.dtype.kind not in "iu" or offsets.shape != (n + 1,):
        raise FaultError(f"offsets must be {n + 1} integers for {n} chips; got {offsets.dtype} {offsets.shape}.")
    p = len(rc)
    if rc.dtype.kind not in "iu" or rc.shape != (p, 2) or masks.dtype != np.int32 or masks.shape != (p, len(SITES), 2):
        raise FaultError(f"fault arrays have bad types or shapes: pe_rc {rc.dtype} {rc.shape}, "
                         f"pe_masks {masks.dtype} {masks.shape} (int32 masks of shape (P, 4, 2) expected).")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != p or (np.diff(offsets) < 0).any():
        raise FaultError(f"offsets must rise from 0 to {p} (the number of faulty PEs).")
    rc = rc.astype(np.int64)
    if p and (rc.min() < 0 or (rc[:, 0] >= cfg.rows).any() or (rc[:, 1] >= cfg.cols).any()):
        raise FaultError(f"PE indices outside the {cfg.rows}x{cfg.cols} array.")
    key = np.repeat(np.arange(n), np.diff(offsets)) * cfg.n_pes + rc[:, 0] * cfg.cols + rc[:, 1]
    order = np.argsort(key, kind="stable")
    if (np.diff(key[order]) == 0).any():
        raise FaultError("a chip lists the same PE twice.")
    rc, masks = rc[order], masks[order].copy()
    for s, width in enumerate(cfg.precision.widths()):
        if width < 32 and not np.array_equal((masks[:, s] << (32 - width)) >> (32 - width), masks[:, s]):
            raise FaultError(f"{SITES[s]} masks are not sign-extended {width}-bit patterns.")
    masks[:, :, 0] &= ~masks[:, :, 1]
    if not stuck(masks[:, :, 0], masks[:, :, 1]).any(axis=1).all():
        raise FaultError("a PE listed as faulty has no stuck bit.")
    params = data["params"]
    try:
        params = json.loads(str(params)) if params.dtype.kind == "U" and params.ndim == 0 else None
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise FaultError("params is not a JSON object.")
    split = offsets[1:-1]
    return [str(i) for i in ids], np.split(rc, split), np.split(masks, split), params
