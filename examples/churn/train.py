"""The example's training function: Shipyard calls train(ctx) and registers what it returns."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ["contract", "region"]


def train(ctx):
    """Fit a gradient-boosted churn classifier and log validation metrics."""
    X, y = ctx.features()
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
                    remainder="passthrough",
                ),
            ),
            (
                "classify",
                GradientBoostingClassifier(
                    n_estimators=ctx.params.get("n_estimators", 100),
                    max_depth=ctx.params.get("max_depth", 3),
                    learning_rate=ctx.params.get("learning_rate", 0.1),
                    random_state=ctx.seed,
                ),
            ),
        ]
    )
    model.fit(X, y)
    if ctx.validation is not None:
        X_valid, y_valid = ctx.features(ctx.validation)
        scores = model.predict_proba(X_valid)[:, 1]
        ctx.log_metric("roc_auc", roc_auc_score(y_valid, scores))
        ctx.log_metric("accuracy", accuracy_score(y_valid, model.predict(X_valid)))
    return model
