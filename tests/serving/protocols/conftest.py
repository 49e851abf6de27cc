"""Specs shared by the protocol tests."""

from __future__ import annotations

import pytest

from shipyard.serving.protocols import InputSpec


@pytest.fixture
def numeric_spec() -> InputSpec:
    """Three numeric columns: a float64 matrix."""
    return InputSpec.from_columns([("age", "long"), ("income", "double"), ("member", "boolean")])


@pytest.fixture
def mixed_spec() -> InputSpec:
    """A string column among numbers: an object matrix."""
    return InputSpec.from_columns([("age", "long"), ("city", "string"), ("income", "double")])
