"""The rides example's training function: a point-in-time training set, then a classifier.

`ctx.training_set` joins each ride offer with the driver's statistics as they were at
the time of the offer (never later ones), computes the on-demand feature, snapshots the
result and records its lineage on the model version, so `shipyard serve` looks up the
same features for each request.
"""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
    "ride_features:trips_per_km",
]


def train(ctx):
    """Fit on the first 80 % of ride offers in time, report on the rest."""
    rides = ctx.training_set("data/rides.parquet", FEATURES)
    X, y = rides.inputs(ctx.target)  # feature columns, then the request input
    order = rides.frame[rides.timestamp_column].argsort(kind="stable").to_numpy()
    cut = int(len(order) * 0.8)
    fit, hold = order[:cut], order[cut:]
    model = HistGradientBoostingClassifier(
        max_iter=ctx.params.get("max_iter", 100),
        learning_rate=ctx.params.get("learning_rate", 0.1),
        random_state=ctx.seed,
    )
    model.fit(X.iloc[fit], y.iloc[fit])
    scores = model.predict_proba(X.iloc[hold])[:, 1]
    ctx.log_metric("roc_auc", roc_auc_score(y.iloc[hold], scores))
    ctx.log_metric("accuracy", accuracy_score(y.iloc[hold], model.predict(X.iloc[hold])))
    return model
