"""The end-to-end demo's data: river's Agrawal concept-drift benchmark, offline.

    paths = write_training_data(Path("data"))         # train/valid/golden.csv, function 0
    traffic = LiveTraffic(3000, switch_at=1500)       # concept 0, then 2 from row 1500
    bad = worse_training_frame()                      # a labelling bug, for the rollback act

Needs the ``demo`` extra (river). See :mod:`shipyard.demo.agrawal` for the measured
accuracy drop and how many labelled rows the monitor needs to see it.
"""

from shipyard.demo.agrawal import (
    AFTER,
    BEFORE,
    CATEGORICAL,
    COLUMNS,
    FEATURES,
    NOISE,
    TARGET,
    Column,
    LiveRequest,
    LiveTraffic,
    agrawal_frame,
    worse_training_frame,
    write_training_data,
)

__all__ = [
    "AFTER",
    "BEFORE",
    "CATEGORICAL",
    "COLUMNS",
    "FEATURES",
    "NOISE",
    "TARGET",
    "Column",
    "LiveRequest",
    "LiveTraffic",
    "agrawal_frame",
    "worse_training_frame",
    "write_training_data",
]
