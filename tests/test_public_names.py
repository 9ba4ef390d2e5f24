"""The names issues 24 (babysitting) and 25 (search, ensembles, TTA, transfer) promise are
importable where they say, and tta_predict's old home still works."""
import inspect

import pytest

import tinygrad_lite as tl
from tinygrad_lite import data, nn, optim, train

PROMISED = {
    train: ["activation_stats", "ActivationStats", "dead_units", "sanity_check",
            "check_gradients", "UpdateRatio", "lr_find", "diagnose", "search", "LogUniform",
            "Uniform", "IntUniform", "Choice", "Ensemble", "SnapshotEnsemble", "evaluate_tta",
            "tta_predict", "evaluate", "freeze", "unfreeze"],
    nn: ["summary"],
    optim.swa_utils: ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn"],
    data: ["random_split", "tta_predict"],
}


@pytest.mark.parametrize("module, name", [(m, n) for m, names in PROMISED.items() for n in names],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_promised_name_is_there(module, name):
    assert callable(getattr(module, name)), f"{module.__name__}.{name}"
    assert name in getattr(module, "__all__", [name])


def test_fit_takes_diagnose_and_modules_convert_precision():
    assert "diagnose" in inspect.signature(train.fit).parameters
    model = nn.Linear(2, 2)
    assert model.double().weight.dtype == tl.float64 and model.float().weight.dtype == tl.float32


def test_diagnose_kinds_are_the_issues_strings():
    from tinygrad_lite.train.diagnose import KINDS
    assert set(KINDS) == {"diverged", "lr_too_high", "lr_too_low", "bad_init", "overfitting",
                          "underfitting", "still_improving", "plateau"}


def test_tta_predict_from_data_is_the_train_one():
    x = tl.randn(2, 3, 8, 8)

    def model(batch):  # a plain function: no train/eval switch
        return batch.mean(axis=(2, 3))

    assert (data.tta_predict(model, x, shift=1).numpy() ==
            train.tta_predict(model, x, shift=1).numpy()).all()
