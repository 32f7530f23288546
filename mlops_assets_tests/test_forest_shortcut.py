"""The service's forest shortcut gives exactly the forest's own answers, and steps aside when it cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlops_assets_tests.test_prediction_log import _service


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.lognormal(3, 1, rows), "hour": rng.integers(0, 24, rows),
                         "kind": rng.choice(["a", "b", "c"], rows)})


def _pipeline(estimator) -> Pipeline:
    features = ColumnTransformer([("num", "passthrough", ["amount", "hour"]),
                                  ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["kind"])])
    return Pipeline([("features", features), ("estimator", estimator)])


@pytest.fixture(scope="module")
def service():
    return _service()


def test_a_forest_classifier_gets_the_same_probabilities_bit_for_bit(service):
    train = _frame(2000, 1)
    target = (train["amount"] > 25) ^ (train["kind"] == "b")
    pipeline = _pipeline(RandomForestClassifier(n_estimators=40, max_depth=8, random_state=3)).fit(train, target)
    shortcut = service.ForestShortcut(pipeline, "classification")
    assert shortcut.enabled
    for seed in range(2, 8):
        frame = _frame(int(1 + seed ** 3), seed)  # 9 to 344 rows, and a 1-row frame below
        assert np.array_equal(shortcut(frame), pipeline.predict_proba(frame))
    assert shortcut.enabled  # the first call compared it with the pipeline and kept it
    one = _frame(1, 99)
    assert np.array_equal(shortcut(one), pipeline.predict_proba(one))


def test_a_forest_regressor_gets_the_same_predictions(service):
    train = _frame(1500, 4)
    pipeline = _pipeline(ExtraTreesRegressor(n_estimators=25, random_state=1)).fit(train, train["amount"] * 2)
    shortcut = service.ForestShortcut(pipeline, "regression")
    frame = _frame(50, 5)
    assert shortcut.enabled and np.array_equal(shortcut(frame), pipeline.predict(frame))
    assert np.array_equal(shortcut(frame), pipeline.predict(frame)) and shortcut.enabled


def test_other_models_keep_the_pipeline_and_a_difference_switches_the_shortcut_off(service):
    train = _frame(500, 6)
    target = train["amount"] > 20
    boosted = _pipeline(HistGradientBoostingClassifier(max_iter=20)).fit(train, target)
    assert not service.ForestShortcut(boosted, "classification").enabled

    forest = _pipeline(RandomForestClassifier(n_estimators=10, random_state=0)).fit(train, target)
    shortcut = service.ForestShortcut(forest, "classification")
    drifted = shortcut._average
    shortcut._average = lambda frame: drifted(frame) + 1e-9  # a shortcut that would be wrong
    frame = _frame(20, 7)
    assert np.array_equal(shortcut(frame), forest.predict_proba(frame))  # the first answer is the pipeline's
    assert not shortcut.enabled
