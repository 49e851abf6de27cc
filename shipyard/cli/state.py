"""Global CLI options and the configuration they resolve to, loaded once per command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import Config, load_config

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["CliState"]


@dataclass
class CliState:
    """What the root command's flags said; the config is resolved on first use."""

    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _config: Config | None = None
    _store: Store | None = None

    def config(self, *, require_file: bool = True) -> Config:
        """The resolved configuration (defaults < file < environment < flags)."""
        if self._config is None:
            self._config = load_config(
                self.config_path, overrides=self.overrides, require_file=require_file
            )
        return self._config

    def store(self) -> Store:
        """The control-plane store of the resolved configuration."""
        if self._store is None:
            from shipyard.store import Store

            self._store = Store(self.config().db_url)
        return self._store
