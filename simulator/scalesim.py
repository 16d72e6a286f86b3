"""Read SCALE-Sim v3 inputs (topology CSVs and ``.cfg`` files) and time them on our array.

SCALE-Sim (``scalesim`` on PyPI, v3.0.0) is the usual peer for systolic-array timing; its
topology and config files are what users already have. This module reads them and maps
every layer to our GEMM ``Y[M, N] = X[M, K] @ W[K, N]`` exactly as SCALE-Sim's
weight-stationary dataflow does (``topology_utils.calc_spatio_temporal_params``, ``ws``):

- ``K = filter_h * filter_w * channels`` (SCALE-Sim's ``Sr``, the conv window, on rows),
- ``N = num_filters`` (``Sc``, on columns),
- ``M = ofmap_h * ofmap_w`` (``T``, streamed input vectors), where SCALE-Sim computes
  ``ofmap_h = ceil((ifmap_h - filter_h + stride) / stride)``. That is
  ``ceil((ifmap_h - filter_h) / stride) + 1``: one more than PyTorch's unpadded
  ``floor(...) + 1`` when ``ifmap_h - filter_h`` is not a multiple of the stride.
  We follow SCALE-Sim so the cycle counts match.

A GEMM-form row ``name, M, N, K,`` is what SCALE-Sim turns into the conv
``ifmap M x K, filter 1 x K, 1 channel, N filters, stride 1``: the same ``(M, K, N)``.
Layers whose name contains ``DP`` (depthwise) are split, as SCALE-Sim does, into one
single-channel layer per channel, named ``<name>Channel_<i>``.

For a stall-free WS run SCALE-Sim's "Total Cycles" is ``folds * (2R + C + M - 2) - 1``
per layer (the 0-based index of the last cycle of its demand matrices), i.e.
:attr:`simulator.timing.GemmTiming.scalesim_cycles`; :func:`scalesim_report` reproduces
the other columns of its ``COMPUTE_REPORT.csv``.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ArrayConfig
from .errors import ConfigError
from .timing import GemmTiming, gemm_timing

__all__ = [
    "ConvParams",
    "Layer",
    "ScaleSimReport",
    "read_topology",
    "read_config",
    "layer_timings",
    "scalesim_report",
]

FORMS = ("conv", "gemm")
_CONV_FIELDS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
_GEMM_FIELDS = ("M", "N", "K")


@dataclass(frozen=True)
class ConvParams:
    """The convolution of one conv-form topology row, as SCALE-Sim reads it.

    Attributes
    ----------
    ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride : int
        The row's fields; ``stride`` applies to both directions (SCALE-Sim's one
        ``Strides`` column).
    """

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int

    @property
    def ofmap_h(self) -> int:
        """SCALE-Sim's ``ceil((ifmap_h - filter_h + stride) / stride)``."""
        return -(-(self.ifmap_h - self.filter_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        """SCALE-Sim's ``ceil((ifmap_w - filter_w + stride) / stride)``."""
        return -(-(self.ifmap_w - self.filter_w + self.stride) // self.stride)


@dataclass(frozen=True)
class Layer:
    """One layer of a topology, as the GEMM our array runs.

    Attributes
    ----------
    name : str
    m, k, n : int
        GEMM shape: ``M`` input vectors (ofmap pixels), reduction ``K`` (filter window),
        ``N`` outputs (filters).
    conv : ConvParams or None
        The original conv row; ``None`` for a GEMM-form row.
    sparsity : tuple of int
        SCALE-Sim's optional ``N:M`` column (default ``(1, 1)``); read and kept, not
        modelled (sparse runs are refused by :func:`read_config`).
    line : int
        1-based line of the row in its file.
    """

    name: str
    m: int
    k: int
    n: int
    conv: ConvParams | None = None
    sparsity: tuple[int, int] = (1, 1)
    line: int = 0

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


@dataclass(frozen=True)
class ScaleSimReport:
    """The ``COMPUTE_REPORT.csv`` columns SCALE-Sim v3 gives a stall-free WS layer.

    Attributes
    ----------
    total_cycles : int
        "Total Cycles": ``folds * (2R + C + M - 2) - 1``.
    stall_cycles : int
        "Stall Cycles": 0 (stall-free memory assumed).
    overall_util_pct : float
        "Overall Util %": ``100 * M*K*N / (total_cycles * R * C)``.
    mapping_efficiency_pct : float
        "Mapping Efficiency %": ``100 * K*N / (folds * R * C)`` (our PE utilisation).
    compute_util_pct : float
        "Compute Util %": per-fold ``used PEs * M / (R*C * (2R + 2C + M - 3))``, averaged
        over folds (SCALE-Sim's ``systolic_compute_ws`` counts ``C - 1`` more cycles per
        fold here than in its total).
    """

    total_cycles: int
    stall_cycles: int
    overall_util_pct: float
    mapping_efficiency_pct: float
    compute_util_pct: float


def read_topology(path, form: str | None = None) -> list[Layer]:
    """Read a SCALE-Sim topology CSV (conv or GEMM form) into GEMM layers.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV. Conv form: header ``Layer name, IFMAP Height, IFMAP Width, Filter Height,
        Filter Width, Channels, Num Filter, Strides,`` and one row per layer, with an
        optional 9th ``N:M`` sparsity field. GEMM form: header ``Layer, M, N, K,`` (note the
        order: M, then N filters, then K reduction), optional 5th ``N:M`` field. Spaces
        around fields, trailing commas and blank lines are accepted (SCALE-Sim itself needs
        the trailing comma on every row).
    form : {None, "conv", "gemm"}
        Force the form instead of detecting it from the header (SCALE-Sim's ``-i`` flag).

    Returns
    -------
    list of Layer
        In file order; depthwise (``DP``) rows expanded per channel.

    Raises
    ------
    ConfigError
        Missing or unreadable file, unknown header, wrong field count, non-integer or
        non-positive field, filter larger than the ifmap, no layers. The message names the
        file, the line and the value.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("Layer, M, N, K,\\nfc1, 64, 10, 784,\\n")
    >>> layer = read_topology(p)[0]
    >>> layer.name, layer.m, layer.k, layer.n
    ('fc1', 64, 784, 10)
    """
    path = Path(path)
    lines = _read_lines(path, "topology")
    if form is not None and form not in FORMS:
        raise ConfigError(f"topology form must be one of {list(FORMS)} or None; got {form!r}.")
    numbered = [(i, _cells(text)) for i, text in enumerate(lines, start=1) if text.strip()]
    if not numbered:
        raise ConfigError(f"{path}: empty topology file (expected a header line and one row per layer).")
    header_line, header = numbered[0]
    form = form or _detect_form(path, header_line, header)
    layers: list[Layer] = []
    for line, cells in numbered[1:]:
        layers.extend(_parse_row(path, line, cells, form))
    if not layers:
        raise ConfigError(f"{path}: no layers after the header on line {header_line}.")
    return layers


def read_config(path) -> ArrayConfig:
    """Read the array shape of a SCALE-Sim ``.cfg`` file.

    Parameters
    ----------
    path : str or os.PathLike
        A SCALE-Sim config. Only ``[architecture_presets]`` ``ArrayHeight`` (rows, the
        reduction dimension), ``ArrayWidth`` (columns) and ``Dataflow`` are used; memory
        sizes and bandwidths are ignored (our timing assumes no memory stalls). A missing
        ``Dataflow`` means ``ws``.

    Returns
    -------
    ArrayConfig

    Raises
    ------
    ConfigError
        Missing file, malformed INI, missing section or key, non-integer size, a dataflow
        other than ``ws`` (we model weight-stationary arrays only), or
        ``[sparsity] SparsitySupport = true`` (not modelled).
    """
    path = Path(path)
    text = "\n".join(_read_lines(path, "config"))
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid SCALE-Sim config: {' '.join(str(e).split())}") from None
    section = "architecture_presets"
    if not parser.has_section(section):
        raise ConfigError(f"{path}: no [{section}] section (SCALE-Sim keeps ArrayHeight/ArrayWidth there).")
    dims = {}
    for key, attr in (("ArrayHeight", "rows"), ("ArrayWidth", "cols")):
        raw = parser.get(section, key, fallback=None)
        if raw is None:
            raise ConfigError(f"{path}: [{section}] has no {key}.")
        where = f"{path}, line {_line_of(lines=text, key=key)}"
        try:
            dims[attr] = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{where}: {key} must be an integer; got {raw.strip()!r}.") from None
        if dims[attr] < 1:
            raise ConfigError(f"{where}: {key} must be a positive integer; got {dims[attr]}.")
    dataflow = parser.get(section, "Dataflow", fallback="ws").strip().lower()
    if dataflow != "ws":
        raise ConfigError(
            f"{path}, line {_line_of(lines=text, key='Dataflow')}: Dataflow is {dataflow!r}; this simulator "
            "models weight-stationary arrays only, so set 'Dataflow : ws'."
        )
    sparse = parser.get("sparsity", "SparsitySupport", fallback="false").strip().lower()
    if sparse == "true":
        raise ConfigError(
            f"{path}, line {_line_of(lines=text, key='SparsitySupport')}: SparsitySupport is true; "
            "sparse mappings are not modelled, set it to false."
        )
    try:
        return ArrayConfig(rows=dims["rows"], cols=dims["cols"])
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def layer_timings(topology, cfg: ArrayConfig) -> list[tuple[Layer, GemmTiming]]:
    """Closed-form WS timing of every layer of a topology on ``cfg``.

    Parameters
    ----------
    topology : str, os.PathLike or list of Layer
        A topology CSV (read with :func:`read_topology`) or layers already read.
    cfg : ArrayConfig

    Returns
    -------
    list of (Layer, GemmTiming)
        ``timing.n_cycles`` is our count, ``timing.scalesim_cycles`` SCALE-Sim's.
    """
    if not isinstance(cfg, ArrayConfig):
        raise ConfigError(f"cfg must be an ArrayConfig; got {type(cfg).__name__}.")
    layers = read_topology(topology) if isinstance(topology, (str, Path)) else list(topology)
    for layer in layers:
        if not isinstance(layer, Layer):
            raise ConfigError(f"topology must be a path or a list of Layer; got an item of type {type(layer).__name__}.")
    return [(layer, gemm_timing(cfg, layer.m, layer.k, layer.n)) for layer in layers]


def scalesim_report(timing: GemmTiming, cfg: ArrayConfig) -> ScaleSimReport:
    """What SCALE-Sim v3 writes in ``COMPUTE_REPORT.csv`` for this stall-free WS layer.

    Parameters
    ----------
    timing : GemmTiming
        From :func:`layer_timings` or :func:`simulator.gemm_timing` on the same ``cfg``.
    cfg : ArrayConfig

    Returns
    -------
    ScaleSimReport
    """
    R, C, M = cfg.rows, cfg.cols, timing.m
    total = timing.scalesim_cycles
    fold_cycles = 2 * R + 2 * C + M - 3
    return ScaleSimReport(
        total_cycles=total,
        stall_cycles=0,
        overall_util_pct=100.0 * timing.macs / (total * cfg.n_pes),
        mapping_efficiency_pct=100.0 * timing.pe_utilisation,
        compute_util_pct=100.0 * timing.k * timing.n * M / (timing.folds * cfg.n_pes * fold_cycles),
    )


# ----------------------------------------------------------------------------- helpers


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} path is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} file {path}: {e}") from None


def _cells(text: str) -> list[str]:
    cells = [c.strip() for c in text.strip().split(",")]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _detect_form(path: Path, line: int, header: list[str]) -> str:
    low = [c.lower() for c in header]
    if len(low) >= 4 and low[1:4] == ["m", "n", "k"]:
        return "gemm"
    if len(low) >= 8 and "ifmap" in low[1]:
        return "conv"
    raise ConfigError(
        f"{path}, line {line}: header {', '.join(header)!r} is neither SCALE-Sim's conv form "
        f"('Layer name, {', '.join(_CONV_FIELDS)},') nor its GEMM form ('Layer, M, N, K,')."
    )


def _parse_row(path: Path, line: int, cells: list[str], form: str) -> list[Layer]:
    fields = _CONV_FIELDS if form == "conv" else _GEMM_FIELDS
    where = f"{path}, line {line}"
    if len(cells) not in (len(fields) + 1, len(fields) + 2):
        raise ConfigError(
            f"{where}: a {form}-form row needs {len(fields) + 1} fields (name, {', '.join(fields)}) "
            f"and optionally an N:M sparsity field; got {len(cells)}: {', '.join(cells)!r}."
        )
    name = cells[0]
    if not name:
        raise ConfigError(f"{where}: empty layer name.")
    values = [_positive_int(where, field, raw) for field, raw in zip(fields, cells[1:])]
    sparsity = _sparsity(where, cells[len(fields) + 1]) if len(cells) == len(fields) + 2 else (1, 1)
    if form == "gemm":
        m, n, k = values
        return [Layer(name=name, m=m, k=k, n=n, sparsity=sparsity, line=line)]
    conv = ConvParams(*values)
    for dim in ("h", "w"):
        f, i = getattr(conv, f"filter_{dim}"), getattr(conv, f"ifmap_{dim}")
        if f > i:
            side = "height" if dim == "h" else "width"
            raise ConfigError(f"{where}: layer {name!r}: filter {side} {f} is larger than the IFMAP {side} {i}.")
    if "DP" in name:  # SCALE-Sim's depthwise convention: one single-channel layer per channel
        one = ConvParams(**{**conv.__dict__, "channels": 1})
        return [_conv_layer(f"{name}Channel_{c}", one, sparsity, line) for c in range(conv.channels)]
    return [_conv_layer(name, conv, sparsity, line)]


def _conv_layer(name: str, conv: ConvParams, sparsity, line: int) -> Layer:
    return Layer(
        name=name,
        m=conv.ofmap_h * conv.ofmap_w,
        k=conv.filter_h * conv.filter_w * conv.channels,
        n=conv.num_filters,
        conv=conv,
        sparsity=sparsity,
        line=line,
    )


def _positive_int(where: str, field: str, raw: str) -> int:
    if not re.fullmatch(r"[+]?\d+", raw):
        raise ConfigError(f"{where}: {field} must be a positive integer; got {raw!r}.")
    value = int(raw)
    if value < 1:
        raise ConfigError(f"{where}: {field} must be a positive integer; got {raw!r}.")
    return value


def _sparsity(where: str, raw: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < int(match[1]):
        raise ConfigError(f"{where}: sparsity must be 'N:M' with 1 <= N <= M; got {raw!r}.")
    return int(match[1]), int(match[2])


def _line_of(lines: str, key: str) -> int | str:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[:=]", re.IGNORECASE)
    for i, text in enumerate(lines.splitlines(), start=1):
        if pattern.match(text):
            return i
    return "?"
