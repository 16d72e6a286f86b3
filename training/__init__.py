"""The DNN side: data, models, fault-aware training, eFAT planning, and the ``efat`` CLI.

Only the command line lives here so far; data, models and eFAT arrive with the
mapping and eFAT issues.
"""

__all__: list[str] = []
