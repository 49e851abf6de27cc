"""Delivery: how live traffic is split between a model's versions, and roll-outs over it."""

from shipyard.delivery.traffic import TrafficSettings, read_traffic, write_traffic

__all__ = ["TrafficSettings", "read_traffic", "write_traffic"]
