"""The README's Quickstart, run as written on the churn example's data.

Every fenced block of the section runs, in order, in one bash script from a folder laid
out like a clone of the repository: ``bash`` blocks as they are, and a block whose first
line is ``# <file name>`` is written to that file. The one block that starts a
long-running server (``shipyard serve``) is left out, and the test says so if that ever
stops being exactly one block.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE = re.compile(r"^# ([\w.-]+\.(?:py|ya?ml))\n")


def quickstart_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README's Quickstart section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return [(match.group(1), match.group(2)) for match in _FENCE.finditer(section)]


def quickstart_script(blocks: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """One bash script doing what the blocks say, and the blocks it leaves out."""
    lines = ["set -euo pipefail"]
    skipped = []
    for language, text in blocks:
        named = _FILE.match(text)
        if named is not None:
            lines.append(f"cat > {named.group(1)} <<'QUICKSTART_EOF'\n{text}QUICKSTART_EOF")
        elif language == "bash" and "shipyard serve" in text:
            skipped.append(text)
        elif language == "bash":
            lines.append(text)
        else:
            raise AssertionError(f"a {language} block the test cannot place:\n{text}")
    return "\n".join(lines) + "\n", skipped


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "examples" / "churn" / "data", clone / "examples" / "churn" / "data")
    script, skipped = quickstart_script(quickstart_blocks())
    assert len(skipped) == 1, f"expected only the serving block to be left out: {skipped}"
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Registered churn/1" in done.stdout
    assert "PASSED" in done.stdout
    assert "churn@champion → 1" in done.stdout
    project = clone / "churn"
    assert (project / "schema.yaml").is_file()
    url = f"sqlite:///{project / '.shipyard' / 'shipyard.db'}"
    champion = MlflowClient(url, url).get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == "1"
