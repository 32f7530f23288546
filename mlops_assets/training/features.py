"""The feature transformer: one implementation for the features table, training and serving.

Built only from the spec and scikit-learn parts (no project classes), and stateless by design:
categories come from the spec, transforms are fixed functions. So the transformer that writes the
features table is identical to the first step of the registered model pipeline, and the registered
model loads anywhere scikit-learn is installed: it predicts from the cleaned columns directly.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.tables import MissingInput, commit_attempts, q, table, transaction

FEATURE_TABLE_META_COLUMNS = ("_partition", "_ingested_at")


def carried_columns(spec: DatasetSpec) -> list[str]:
    """Columns the features table carries beside the features: key, time, target, bookkeeping."""
    return [c for c in (spec.key, spec.time_column, spec.target, *FEATURE_TABLE_META_COLUMNS) if c]


def feature_names(spec: DatasetSpec, columns) -> list[str]:
    """The model's input columns among a features table's columns (everything not carried)."""
    carried = set(carried_columns(spec))
    return [c for c in columns if c not in carried]


def build_feature_transformer(spec: DatasetSpec) -> ColumnTransformer:
    """Unfitted ColumnTransformer for the spec's feature columns (pandas in, pandas out)."""
    parts: list[tuple[str, object, list[str]]] = []
    plain = [c.name for c in spec.feature_columns if c.type in ("integer", "float") and not c.transform]
    logged = [c.name for c in spec.feature_columns if c.transform == "log1p"]
    flags = [c.name for c in spec.feature_columns if c.type == "boolean"]
    categories = [c for c in spec.feature_columns if c.type == "category"]
    if plain:
        parts.append(("numeric", "passthrough", plain))
    if logged:
        parts.append(("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one"), logged))
    if flags:
        parts.append(("flag", "passthrough", flags))
    if categories:
        encoder = OneHotEncoder(
            categories=[list(c.values or ()) for c in categories],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float64,
        )
        parts.append(("onehot", encoder, [c.name for c in categories]))
    unsupported = [c.name for c in spec.feature_columns if c.type in ("string", "timestamp", "date")]
    if unsupported:
        raise ValueError(
            f"dataset {spec.name}: feature columns {unsupported} are text/time; mark them `role: id` or `role: time`"
        )
    transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return transformer.set_output(transform="pandas")


def fitted_feature_transformer(spec: DatasetSpec, cleaned_sample: pd.DataFrame) -> ColumnTransformer:
    """Fit on any cleaned rows: the result does not depend on them (see module docstring)."""
    return build_feature_transformer(spec).fit(cleaned_sample[spec.feature_names])


def feature_frame(transformer: ColumnTransformer, spec: DatasetSpec, cleaned: pd.DataFrame) -> pd.DataFrame:
    """Model-ready rows: transformed features, then the target and bookkeeping columns."""
    features = transformer.transform(cleaned[spec.feature_names])
    features.index = cleaned.index
    carry = [c for c in carried_columns(spec) if c in cleaned]
    return pd.concat([features, cleaned[carry]], axis=1)


def build_features_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> pd.DataFrame:
    """Replace `partition` in `<dataset>.features` with the transformed cleaned rows; returns them."""
    cleaned = con.execute(
        f"SELECT * FROM {table(spec, 'cleaned')} WHERE _partition = ? ORDER BY _source_line", [partition]
    ).df()
    if cleaned.empty:
        raise MissingInput(
            f"{spec.name}: partition {partition!r} has no cleaned rows; materialize {spec.name}/cleaned first"
        )
    frame = feature_frame(fitted_feature_transformer(spec, cleaned), spec, cleaned)
    target = table(spec, "features")
    con.register("_features_frame", frame)
    try:
        for attempt in commit_attempts(con, f"{spec.name}.features [{partition}]"):
            with attempt, transaction(con):
                con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM _features_frame LIMIT 0")
                existing = [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
                if existing != list(frame.columns):
                    # The spec changed the feature set: the old table cannot hold the new rows.
                    con.execute(f"DROP TABLE {target}")
                    con.execute(f"CREATE TABLE {target} AS SELECT * FROM _features_frame LIMIT 0")
                con.execute(f"DELETE FROM {target} WHERE _partition = ?", [partition])
                cols = ", ".join(q(c) for c in frame.columns)
                con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _features_frame")
    finally:
        con.unregister("_features_frame")
    return frame
