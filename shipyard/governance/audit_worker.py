"""The worker process of a split verification: ``python -m shipyard.governance.audit_worker``.

Started by :mod:`shipyard.governance.audit_split` with one argument, what to do, and
the path of the file to write its answer to (a pickle, read back only by the process
that started it). Its input comes on stdin, so a database password never shows in a
process list:

- ``part OUT``: stdin is JSON ``{"url", "upto", "sizes", "ranges"}``; the answer is the
  :class:`~shipyard.governance.audit_verify.Part` of the leaves up to ``upto``, with
  the tree over them;
- ``drift OUT``: stdin is the pickled ``(config, principal)``; the answer is the list of
  registry-drift findings.

A fresh interpreter, not ``multiprocessing``: nothing of the caller's main module runs
again here, and this imports only what its job needs.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    """Do the job named in ``argv`` and write its answer; 2 on a wrong call."""
    if len(argv) != 2 or argv[0] not in ("part", "drift"):
        sys.stderr.write("usage: python -m shipyard.governance.audit_worker part|drift OUT\n")
        return 2
    job, out = argv
    answer: Any
    if job == "part":
        from shipyard.governance.audit_verify import scan_part

        task = json.loads(sys.stdin.read())
        ranges = [(int(lo), int(hi)) for lo, hi in task["ranges"]]
        answer = scan_part(str(task["url"]), int(task["upto"]), list(task["sizes"]), ranges)
    else:
        from shipyard.governance.audit_split import drift_findings

        config, principal = pickle.loads(sys.stdin.buffer.read())  # from our own parent
        answer = drift_findings(config, principal)
    Path(out).write_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
