"""Each package's public surface is its ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "shipyard.config",
    "shipyard.config.reference",
    "shipyard.data",
    "shipyard.delivery",
    "shipyard.moments",
    "shipyard.levels",
    "shipyard.jsonable",
    "shipyard.demo",
    "shipyard.monitoring",
    "shipyard.monitoring.alerting",
    "shipyard.pipelines",
    "shipyard.registry",
    "shipyard.serving",
    "shipyard.serving.protocols",
    "shipyard.store",
    "shipyard.training",
    "shipyard.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported, f"{name} exports nothing"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == []
    assert len(set(exported)) == len(exported)


def test_every_error_says_how_it_maps() -> None:
    from shipyard import errors

    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.ShipyardError)
    ]
    assert len(classes) >= 8
    codes = {cls.code for cls in classes}
    assert len(codes) == len(classes), "every error has its own code"
    for cls in classes:
        assert 1 <= cls.exit_code <= 8
        assert 400 <= cls.http_status < 600
    # Who-may-act refusals share one exit code, whatever the surface.
    assert errors.Unauthenticated.exit_code == errors.Forbidden.exit_code == 6
    assert (errors.Unauthenticated.http_status, errors.Forbidden.http_status) == (401, 403)
