"""Deterministic synthetic card transactions: one CSV per day, the same bytes for the same seed and day.

Fraud is a logistic function of the features (night hours, large amounts, far from home, bursts of
card-not-present activity, risky merchant categories), calibrated to ~1.5%. With drift switched on,
from the drift day the spending mix moves online and upmarket and fraud shifts to a new pattern
(daytime, card present, near home), so a model trained before the drift loses recall visibly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_assets.files import atomic_path
from mlops_assets.home import MlopsHome

CATEGORIES = ("grocery", "restaurant", "gas", "travel", "electronics", "online", "entertainment", "health")
_BASE_MIX = np.array([0.26, 0.18, 0.12, 0.05, 0.06, 0.18, 0.09, 0.06])
_DRIFT_MIX = np.array([0.14, 0.12, 0.06, 0.10, 0.14, 0.32, 0.08, 0.04])
_CATEGORY_RISK = np.array([-0.6, -0.3, -0.2, 0.5, 1.0, 0.9, 0.1, -0.4])
_BASE_INTERCEPT = -6.5
_DRIFT_INTERCEPT = -6.45


def _day_seed(seed: int, day: dt.date) -> int:
    digest = hashlib.sha256(f"{seed}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def generate_day(day: dt.date, rows: int, *, seed: int, drifted: bool = False) -> pd.DataFrame:
    """One day of transactions; deterministic in (seed, day, rows, drifted)."""
    rng = np.random.default_rng(_day_seed(seed, day))
    mix = _DRIFT_MIX if drifted else _BASE_MIX
    category = rng.choice(len(CATEGORIES), size=rows, p=mix / mix.sum())
    # Spending peaks at midday and evening; a thin tail of night-time activity.
    hour_weights = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4, 4.2, 4.6, 5.2, 5, 4.5, 4.3, 4.6, 5.4, 6, 5.8, 4.8, 3.6, 2.4, 1.6])
    hour = rng.choice(24, size=rows, p=hour_weights / hour_weights.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, size=rows)
    order = np.argsort(seconds, kind="stable")
    category, hour, seconds = category[order], hour[order], seconds[order]

    amount_mu = 3.4 + (0.45 if drifted else 0.0) + np.where(np.isin(category, [3, 4]), 1.1, 0.0)
    amount = np.round(rng.lognormal(mean=amount_mu, sigma=0.9), 2)
    distance = np.round(rng.lognormal(mean=1.6 + (0.6 if drifted else 0.0), sigma=1.1, size=rows), 2)
    transactions_24h = rng.poisson(lam=3.0 + (1.5 if drifted else 0.0), size=rows)
    online = category == 5
    card_present = ~online & (rng.random(rows) < (0.80 if drifted else 0.92))

    night = (hour <= 4).astype(float)
    if not drifted:
        logit = (
            _BASE_INTERCEPT
            + 1.1 * (np.log1p(amount) - 3.4)
            + 2.2 * night
            + 0.55 * (np.log1p(distance) - 1.6)
            + 0.28 * (transactions_24h - 3)
            + 1.8 * (~card_present)
            + _CATEGORY_RISK[category]
        )
    else:
        # A new fraud ring: daytime, card present (cloned cards), close to home, mid-size amounts.
        daytime = ((hour >= 10) & (hour <= 16)).astype(float)
        logit = (
            _DRIFT_INTERCEPT
            + 1.4 * daytime
            + 1.2 * card_present
            - 0.5 * (np.log1p(distance) - 2.2)
            + 0.9 * np.exp(-((np.log1p(amount) - 4.6) ** 2))
            + 0.15 * (transactions_24h - 4.5)
        )
    is_fraud = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))

    midnight = np.datetime64(day.isoformat(), "s")
    return pd.DataFrame(
        {
            "transaction_id": [f"tx-{day:%Y%m%d}-{i:07d}" for i in range(rows)],
            "timestamp": (midnight + seconds.astype("timedelta64[s]")).astype("datetime64[s]"),
            "amount": amount,
            "merchant_category": np.asarray(CATEGORIES, dtype=object)[category],
            "hour_of_day": hour,
            "distance_from_home": distance,
            "transactions_24h": transactions_24h,
            "card_present": card_present,
            "is_fraud": is_fraud,
        }
    )


def write_day(target: Path, day: dt.date, rows: int, *, seed: int, drifted: bool = False) -> Path:
    """Write one day's CSV atomically (unique temporary + rename): never half-written, never torn by a second writer."""
    with atomic_path(target) as temporary:
        write_day_to(temporary, day, rows, seed=seed, drifted=drifted)
    return target


def write_day_to(path: Path, day: dt.date, rows: int, *, seed: int, drifted: bool = False) -> Path:
    """Write one day's CSV to exactly `path` (a temporary the caller publishes, e.g. to S3)."""
    generate_day(day, rows, seed=seed, drifted=drifted).to_csv(
        path, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n"
    )
    return Path(path)


def generate_range(
    home: MlopsHome,
    dataset: str,
    start: dt.date,
    days: int,
    rows_per_day: int,
    *,
    seed: int,
    drift_from: dt.date | None = None,
    on_day: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write `days` daily files from `start` into `dataset`'s landing zone; `on_day` is told of each (progress)."""
    home.landing(dataset, create=True)
    written = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        target = home.landing_file(dataset, day.isoformat(), daily=True)
        path = write_day(target, day, rows_per_day, seed=seed, drifted=drift_from is not None and day >= drift_from)
        written.append(path)
        if on_day is not None:
            on_day(path)
    return written
