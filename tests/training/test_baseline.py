"""Training loop, evaluation and the pretrained-weights cache."""

from __future__ import annotations

import os

import pytest
import torch

import training.baseline as baseline
from training.baseline import cache_dir_default, evaluate, pretrained, train
from training.data import Dataset, load_digits_dataset
from training.models import MODELS, build_model


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="module")
def small(digits):
    """300 training images: fast enough for many short runs."""
    return Dataset("digits-small", digits.x_train[:300], digits.y_train[:300], digits.x_test, digits.y_test)


def _model(seed=0, name="mlp"):
    torch.manual_seed(seed)
    return build_model(name, (1, 8, 8), 10)


def _equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_is_deterministic_per_seed(small):
    a, losses_a = train(_model(), small, epochs=2, seed=3)
    b, losses_b = train(_model(), small, epochs=2, seed=3)
    c, _ = train(_model(), small, epochs=2, seed=4)
    assert _equal(a, b) and losses_a == losses_b
    assert not _equal(a, c)
    assert len(losses_a) == 2 and losses_a[1] < losses_a[0]


def test_train_does_not_touch_global_rng(small, tmp_path):
    model = _model()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(model, small, epochs=0.2)
    pretrained("mlp", small, epochs=0.2, cache_dir=tmp_path)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("epochs, n_steps, n_losses", [(0, 0, 0), (0.5, 5, 1), (1, 10, 1), (1.5, 15, 2), (2.25, 22, 3)])
def test_fractional_epochs_count_batches(small, epochs, n_steps, n_losses):
    steps = []  # 300 images, batch 32 -> 10 batches per epoch
    model = _model()
    out, losses = train(model, small, epochs=epochs, batch_size=32, after_step=steps.append)
    assert out is model and len(steps) == n_steps and all(m is model for m in steps)
    assert len(losses) == n_losses


def test_grad_mask_freezes_masked_entries(small):
    model = _model()
    w0 = model[1].weight.detach().clone()
    mask = torch.ones_like(w0)
    mask[:5] = 0
    train(model, small, epochs=1, grad_mask={"1.weight": mask, "3.bias": torch.zeros(32)})
    w1 = model[1].weight.detach()
    assert torch.equal(w1[:5], w0[:5]) and not torch.equal(w1[5:], w0[5:])
    assert torch.equal(model[3].bias, _model()[3].bias)
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        train(model, small, epochs=1, grad_mask={"nope": mask})


def test_after_step_can_impose_weights(small):
    model = _model()

    def clamp(m):
        with torch.no_grad():
            m[1].weight[0].fill_(0.25)

    train(model, small, epochs=0.5, after_step=clamp)
    assert torch.all(model[1].weight[0] == 0.25)


def test_train_validates_arguments(small):
    with pytest.raises(ValueError, match="epochs"):
        train(_model(), small, epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        train(_model(), small, batch_size=0)


def test_evaluate_restores_mode_and_counts(small):
    model = _model().train()
    logits_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    x = torch.eye(4).reshape(4, 1, 2, 2)
    assert evaluate(logits_model, x, torch.tensor([0, 1, 2, 0]), batch_size=3) == 0.75
    evaluate(model, small.x_test, small.y_test)
    assert model.training
    with pytest.raises(ValueError, match="same length"):
        evaluate(model, small.x_test, small.y_test[:3])


# ---- cache --------------------------------------------------------------------------------

def test_pretrained_caches_and_does_not_retrain(small, tmp_path, monkeypatch):
    first = pretrained("mlp", small, epochs=1, cache_dir=tmp_path)
    assert not first.training
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("mlp-") and files[0].endswith(".pt")

    def boom(*args, **kwargs):
        raise AssertionError("train() called although the cache holds the model")

    monkeypatch.setattr(baseline, "train", boom)
    second = pretrained("mlp", small, epochs=1, cache_dir=tmp_path)
    assert _equal(first, second)
    with pytest.raises(AssertionError, match="train\\(\\) called"):
        pretrained("mlp", small, epochs=1, seed=1, cache_dir=tmp_path)  # another key


def test_pretrained_is_deterministic_and_keyed(small, tmp_path):
    a = pretrained("mlp", small, epochs=0.5, cache_dir=tmp_path / "a")
    b = pretrained("mlp", small, epochs=0.5, cache_dir=tmp_path / "b")
    assert _equal(a, b)
    pretrained("mlp", small, epochs=1, cache_dir=tmp_path / "a")
    pretrained("mlp", small, epochs=1, seed=1, cache_dir=tmp_path / "a")
    assert len(os.listdir(tmp_path / "a")) == 3


@pytest.mark.parametrize("garbage", [b"", b"not a torch file", None])
def test_corrupted_cache_is_retrained(small, tmp_path, garbage):
    good = pretrained("mlp", small, epochs=0.5, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    if garbage is None:  # a readable file with the wrong contents
        torch.save({"weight": torch.zeros(2)}, path)
    else:
        path.write_bytes(garbage)
    with pytest.warns(UserWarning, match="unreadable cache file"):
        again = pretrained("mlp", small, epochs=0.5, cache_dir=tmp_path)
    assert _equal(good, again)
    assert list(tmp_path.iterdir()) == [path]
    assert _equal(good, pretrained("mlp", small, epochs=0.5, cache_dir=tmp_path))  # repaired, no warning


def test_atomic_write_leaves_no_temp_files(small, tmp_path, monkeypatch):
    pretrained("mlp", small, epochs=0.2, cache_dir=tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        pretrained("mlp", small, epochs=0.3, cache_dir=tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pt"]


def test_cache_dir_from_environment(small, tmp_path, monkeypatch):
    monkeypatch.setenv("EFAT_CACHE_DIR", str(tmp_path / "env"))
    pretrained("mlp", small, epochs=0.2)
    assert len(list((tmp_path / "env").glob("mlp-*.pt"))) == 1
    monkeypatch.delenv("EFAT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir_default() == tmp_path / "xdg" / "efat-sim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir_default() == tmp_path / "home" / ".cache" / "efat-sim"


def test_pretrained_unknown_model(small, tmp_path):
    with pytest.raises(ValueError, match="mlp, lenet5, vgg, vit"):
        pretrained("resnet", small, cache_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name, threshold", [("mlp", 0.95), ("lenet5", 0.95), ("vgg", 0.90), ("vit", 0.95)])
def test_default_training_reaches_accuracy(digits, tmp_path, name, threshold):
    assert name in MODELS
    model = pretrained(name, digits, cache_dir=tmp_path)
    assert evaluate(model, digits.x_test, digits.y_test) >= threshold


def test_training_and_calibration_do_not_depend_on_the_thread_count(small):
    """Float sums split over threads depend on their number: both run on one thread, so a
    machine with more cores trains (and calibrates) the same model."""
    from mapping import quantize

    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = build_model("lenet5", small.input_shape, small.n_classes)
        train(model, small, epochs=0.5, seed=3)
        qm = quantize(model, small.x_train[:64])
        results.append(([p.detach().clone() for p in model.parameters()], qm.act_amax))
        assert torch.get_num_threads() == threads  # restored
    torch.set_num_threads(1)
    (a, amax_a), (b, amax_b) = results
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and amax_a == amax_b
