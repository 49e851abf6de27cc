"""The monitoring package's public surface: what ``__all__`` promises exists and is documented."""

from __future__ import annotations

import inspect

import shipyard.monitoring as monitoring


def test_every_exported_name_exists_once() -> None:
    exported = monitoring.__all__
    assert [name for name in exported if not hasattr(monitoring, name)] == []
    assert len(set(exported)) == len(exported)


def test_every_exported_class_and_function_has_a_docstring() -> None:
    undocumented = [
        name
        for name in monitoring.__all__
        if (inspect.isclass(obj := getattr(monitoring, name)) or inspect.isfunction(obj))
        and not inspect.getdoc(obj)
    ]
    assert undocumented == []


def test_every_detector_is_exported_under_its_method_name() -> None:
    for method, cls in monitoring.DETECTORS.items():
        assert cls.method == method
        assert getattr(monitoring, cls.__name__) is cls
        assert monitoring.detector(method).__class__ is cls
