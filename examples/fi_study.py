"""Mixed-precision fault injection (MPGemmFI, CLUSTER 2024) on our array: the study's figures.

FP32, FP16, BF16 and int8 arrays run the same trained model (LeNet-5 on digits by default;
``--data mnist`` for the MNIST test set, ``--model mlp`` for the MLP) under

* ``bits``: transient flips of every bit of every register site and of the GEMM outputs
  -> ``fi_bits.png``: accuracy against the flipped bit, sign/exponent/mantissa marked;
* ``stuck``: the same bits stuck at 0 and at 1 in 1% of the PEs -> ``fi_stuck.png``;
* ``ber``: flips of every register bit at a sweep of bit-error rates, without and with the
  range check (zeroing or clamping what it flags) -> ``fi_ber.png`` (accuracy, detection);
* ``all``: the three, and ``fi_transient_vs_permanent.png``.

Each writes a CSV of every run beside its PNG into ``--out`` (default ``examples/out``);
an interrupted run resumes from ``fi_STUDY.progress.json``. The options are those of
``efat inject`` (``efat inject --help``)::

    python examples/fi_study.py {bits,stuck,ber,all} [--data digits|mnist] [--model lenet5|mlp]
        [--precisions fp32,fp16,bf16,int8] [--trials 2] [--processes 2] [--out DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the project's packages first

from cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["inject", *sys.argv[1:]]))
