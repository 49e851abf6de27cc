"""The end-to-end demo: river's Agrawal concept-drift benchmark, a workspace, traffic, a pager.

    paths = write_training_data(Path("data"))         # train/valid/golden.csv, function 0
    traffic = LiveTraffic(3000, switch_at=1500)       # concept 0, then 2 from row 1500
    bad = worse_training_frame()                      # a labelling bug, for the rollback act
    with PagerStandIn() as pager:                     # records the alerts it is sent
        workspace = create_workspace(Path("demo"), pager_url=pager.url)  # the loans project
        stream = TrafficStream(url, traffic, on_labelled=workspace.append_labelled)

Needs the ``demo`` extra (river). See :mod:`shipyard.demo.agrawal` for the measured
accuracy drop and how many labelled rows the monitor needs to see it, and
:mod:`shipyard.demo.workspace` for why the golden set holds only the cases both
concepts answer alike.
"""

from shipyard.demo.agrawal import (
    AFTER,
    BEFORE,
    CATEGORICAL,
    COLUMNS,
    FEATURES,
    NOISE,
    TARGET,
    Column,
    LiveRequest,
    LiveTraffic,
    agrawal_frame,
    worse_training_frame,
    write_training_data,
)
from shipyard.demo.pager import Page, PagerStandIn
from shipyard.demo.traffic import (
    RequestRecord,
    TrafficColumn,
    TrafficSnapshot,
    TrafficStream,
    traffic_progress,
)
from shipyard.demo.workspace import (
    MODEL_NAME,
    Workspace,
    WorkspaceSettings,
    create_workspace,
    golden_frame,
)

__all__ = [
    "AFTER",
    "BEFORE",
    "CATEGORICAL",
    "COLUMNS",
    "FEATURES",
    "MODEL_NAME",
    "NOISE",
    "TARGET",
    "Column",
    "LiveRequest",
    "LiveTraffic",
    "Page",
    "PagerStandIn",
    "RequestRecord",
    "TrafficColumn",
    "TrafficSnapshot",
    "TrafficStream",
    "Workspace",
    "WorkspaceSettings",
    "agrawal_frame",
    "create_workspace",
    "golden_frame",
    "traffic_progress",
    "worse_training_frame",
    "write_training_data",
]
