"""What the demo prints: its summary when only one population retrained anything (found by
bench_efat on MNIST: its ratio has no interval, stored as null, and the text raised a
TypeError), and the note on rates where the map's grid does not resolve E*."""

from __future__ import annotations

import json
import pathlib

from cli.pipeline import summary_text


def test_a_ratio_from_one_population_prints_without_an_interval():
    s = json.loads((pathlib.Path(__file__).parent / "data" / "summary_one_population_retrains.json").read_text())
    assert s["efat_of_reduce"]["n"] == 1 and s["efat_of_reduce"]["lower"] is None
    text = summary_text(s)
    assert "eFAT = 100.0% (one population, over the 1 populations with any retraining) of Reduce" in text


def test_the_map_says_where_its_grid_does_not_resolve_e_star():
    import numpy as np

    from cli.maps import resolution_note
    from efat import Constraint, ResilienceMap

    # 30 chips per cell; 0.99 passes a 2-point drop from 1.0, 0.9 fails it
    acc = np.full((3, 3, 30), 0.9)
    acc[0, :, :] = 0.99  # 10%: bypass alone suffices
    acc[1, 1:, :] = 0.99  # 20%: the smallest amount, 0.25 epochs, suffices: less might too
    acc[2, 2:, :] = 0.99  # 30%: 1 epoch, and 0.25 certified not to
    rmap = ResilienceMap([0.1, 0.2, 0.3], [0, 0.25, 1], acc, 1.0, {"array": [8, 8]})
    c = Constraint(0.02, 0.9, 0.9)
    assert rmap.unresolved(c).tolist() == [False, True, False]
    assert resolution_note(rmap, c) == ("note: E* is the grid's smallest amount (0.25 epochs) at 20%: the map cannot "
                                        "tell whether less retraining suffices there; smaller amounts on the grid "
                                        "would resolve it")
    acc[1, 1, :] = 0.9  # now 20% needs 1 epoch too: resolved
    assert resolution_note(ResilienceMap([0.1, 0.2, 0.3], [0, 0.25, 1], acc, 1.0, {"array": [8, 8]}), c) is None
