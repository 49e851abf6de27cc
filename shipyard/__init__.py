"""Shipyard: keep a trained model healthy in production."""

__version__ = "0.1.0"
