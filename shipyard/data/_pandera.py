"""pandera, imported once without pyspark's warning.

With pyspark installed (the ``spark`` extra), ``import pandera`` imports
``pyspark.pandas``, which warns on every start that it does not support pandas 3. That
is noise for Shipyard's users (Spark never touches pandera's frames), so it is silenced
here, and only here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support", category=FutureWarning
    )
    import pandera.errors as errors
    import pandera.pandas as pa

__all__ = ["errors", "pa"]
