"""Generate the example's synthetic customer-churn data (deterministic: seed 7).

Run `python make_data.py` to recreate data/train.csv, data/valid.csv,
data/bad_batch.csv (a batch with several data-quality problems, for the validation demo)
and data/golden.csv (the frozen golden set every version is evaluated on).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
REGIONS = ["north", "south", "east", "west"]


def customers(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Customers with a churn label that depends on tenure, charges, contract and calls."""
    contract = rng.choice(CONTRACTS, size=rows, p=[0.55, 0.25, 0.20])
    tenure = rng.integers(1, 72, size=rows)
    charges = np.round(rng.normal(70, 20, size=rows).clip(18, 120), 2)
    calls = rng.poisson(1.5, size=rows)
    logit = (
        -1.0
        - 0.04 * tenure
        + 0.03 * (charges - 70)
        + 0.45 * calls
        + np.select([contract == "month-to-month", contract == "one-year"], [1.2, 0.0], -1.0)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "contract": contract,
            "support_calls": calls,
            "region": rng.choice(REGIONS, size=rows),
            "churned": churned,
        }
    )


def bad_batch(rng: np.random.Generator) -> pd.DataFrame:
    """A batch with an unseen category, out-of-range values, nulls and a missing column."""
    frame = customers(200, rng)
    frame.loc[:9, "contract"] = "weekly"
    frame.loc[10:14, "monthly_charges"] = -5.0
    frame.loc[15:79, "tenure_months"] = np.nan
    frame = frame.drop(columns=["region"])
    frame["coupon_code"] = "WELCOME"
    return frame


def main() -> None:
    rng = np.random.default_rng(7)
    folder = Path(__file__).with_name("data")
    folder.mkdir(exist_ok=True)
    customers(3000, rng).to_csv(folder / "train.csv", index=False)
    customers(1000, rng).to_csv(folder / "valid.csv", index=False)
    bad_batch(rng).to_csv(folder / "bad_batch.csv", index=False)
    customers(2000, rng).to_csv(folder / "golden.csv", index=False)


if __name__ == "__main__":
    main()
