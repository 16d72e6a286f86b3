"""The DNN side: data sets, the model zoo, baseline training (cached), fault-aware
training (FAT) for one chip, fault-aware weight retuning (Fal-reTune), and
fault-injection campaigns over random chips.

``from training import efat`` of earlier releases is gone: the eFAT method is the
package :mod:`efat` (``import efat``), which sits above this one.
"""

from .baseline import (CACHE_VERSION, DEFAULT_EPOCHS, DEFAULT_LRS, TrainState, cache_dir_default, evaluate,
                       model_digest, pretrained, train)
from .campaign import CampaignRow, accuracy_vs_rate, population_accuracy
from .data import DataError, Dataset, load_dataset, load_digits_dataset, load_mnist, read_idx
from .fat import FAT_LR, chip_accuracy, fat_retrain
from .models import MLP, MODELS, LeNet5, SmallVGG, ViT, build_model
from .approx import approx_finetune
from .retune import RetuneReport, activation_histograms, fal_retune

__all__ = [
    "DataError", "Dataset", "load_digits_dataset", "read_idx", "load_mnist", "load_dataset",
    "MLP", "LeNet5", "SmallVGG", "ViT", "MODELS", "build_model",
    "train", "TrainState", "evaluate", "pretrained", "model_digest", "cache_dir_default", "DEFAULT_EPOCHS",
    "DEFAULT_LRS",
    "CACHE_VERSION",
    "accuracy_vs_rate", "CampaignRow", "population_accuracy",
    "fat_retrain", "chip_accuracy", "FAT_LR",
    "activation_histograms", "fal_retune", "RetuneReport", "approx_finetune",
]
