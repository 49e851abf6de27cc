"""Sequential change detectors: ADWIN, Page-Hinkley and CUSUM, and the bank the agent runs.

Each detector takes a stream a batch at a time, returns where alarms fired, restarts
after each, and saves its whole state as JSON so a restarted agent resumes exactly.
:func:`make_detector` sets one up from a stated false-alarm rate per sample;
:class:`StreamBank` runs one per stream (errors, predictions, each feature) and splits
the rate across them.
"""

from shipyard.monitoring.sequential.adwin import ADWIN
from shipyard.monitoring.sequential.bank import Alarm, StreamBank, Task
from shipyard.monitoring.sequential.base import Firing, SequentialDetector
from shipyard.monitoring.sequential.calibration import (
    DetectorKind,
    cusum_threshold,
    make_detector,
)
from shipyard.monitoring.sequential.cusum import CUSUM
from shipyard.monitoring.sequential.page_hinkley import PageHinkley
from shipyard.monitoring.sequential.registry import detector_from_dict

__all__ = [
    "ADWIN",
    "CUSUM",
    "Alarm",
    "DetectorKind",
    "Firing",
    "PageHinkley",
    "SequentialDetector",
    "StreamBank",
    "Task",
    "cusum_threshold",
    "detector_from_dict",
    "make_detector",
]
