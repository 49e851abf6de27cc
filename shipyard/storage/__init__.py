"""Where the project's files live: a local folder or a bucket, behind one ``Location``."""

from __future__ import annotations

__all__: list[str] = []
