"""The Agrawal paper's functions 0 and 2, written out again as an oracle for the demo's data.

The demo's concept switch is checked against these rather than against river itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["rule_a", "rule_b"]


def rule_a(frame: pd.DataFrame) -> np.ndarray:
    """Function 0: approve applicants under 40 or 60 and over."""
    age = frame["age"].to_numpy()
    return ((age < 40) | (age >= 60)).astype(int)


def rule_b(frame: pd.DataFrame) -> np.ndarray:
    """Function 2: approve by education level, with allowed levels depending on age band."""
    age, elevel = frame["age"].to_numpy(), frame["elevel"].to_numpy()
    young = (age < 40) & np.isin(elevel, [0, 1])
    middle = (age >= 40) & (age < 60) & np.isin(elevel, [1, 2, 3])
    old = (age >= 60) & np.isin(elevel, [2, 3, 4])
    return (young | middle | old).astype(int)
