"""The inference server: protocols, router, batcher, model loader, prediction log."""

__all__: list[str] = []
