"""The public surface of shipyard.data: exactly what __all__ says, all of it documented."""

from __future__ import annotations

import inspect

import shipyard.data

PROMISED = {
    "read_frame",
    "dataset_digest",
    "snapshot",
    "load_snapshot",
    "Snapshot",
    "DvcRef",
    "Profile",
    "ColumnProfile",
    "profile_frame",
    "infer_schema",
    "write_schema",
    "load_schema",
    "validate",
    "ValidationReport",
    "CheckFailure",
}


def test_all_lists_the_promised_names_and_only_public_objects() -> None:
    exported = set(shipyard.data.__all__)
    assert exported >= PROMISED
    assert sorted(shipyard.data.__all__) == shipyard.data.__all__
    assert not {name for name in exported if name.startswith("_")}


def test_every_exported_name_exists_and_has_a_docstring() -> None:
    for name in shipyard.data.__all__:
        obj = getattr(shipyard.data, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_public_functions_are_fully_annotated() -> None:
    for name in shipyard.data.__all__:
        obj = getattr(shipyard.data, name)
        if inspect.isfunction(obj):
            signature = inspect.signature(obj)
            assert signature.return_annotation is not inspect.Signature.empty, name
            for parameter in signature.parameters.values():
                assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter})"


def test_data_package_does_not_import_mlflow() -> None:
    for module in ("digest", "frames", "profile", "profiling", "schema", "snapshot", "validation"):
        source = inspect.getsource(getattr(shipyard.data, module))
        assert "mlflow" not in source
