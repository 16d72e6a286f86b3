"""The DNN side: data, model zoo, baseline training, fault campaigns and the ``efat`` CLI.

Names are imported lazily, so ``efat population`` does not pay for importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "data": ("DataError", "Dataset", "load_digits_dataset", "read_idx", "load_mnist", "load_dataset"),
    "models": ("MLP", "LeNet5", "SmallVGG", "MODELS", "build_model"),
    "baseline": ("train", "evaluate", "pretrained", "cache_dir_default", "DEFAULT_EPOCHS", "CACHE_VERSION"),
    "campaign": ("accuracy_vs_rate", "CampaignRow"),
    "fat": ("fat_retrain", "resilience_map", "chip_accuracy"),
    "resilience": ("ResilienceMap", "ResilienceError"),
    "planner": ("plan", "Plan", "PlanError"),
    "execute": ("execute", "Report"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name == "efat":
        return import_module(".efat", __name__)
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
