"""``shipyard config show`` hides secrets unless asked: passwords in URLs, alert keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

PASSWORD = "s3cr3t-pw"
SLACK_PATH = "T000/B000/xyzzy-webhook-secret"
PD_KEY = "pd-integration-key-123"
HEADER = "Bearer tok-abc-123"

CONFIG = f"""
project: shown
database_url: postgresql+psycopg://ana:{PASSWORD}@db.internal/shipyard
monitoring:
  routes:
    - kind: slack
      url: https://hooks.slack.com/services/{SLACK_PATH}
    - kind: pagerduty
      url: https://events.pagerduty.com/v2/enqueue
      routing_key: {PD_KEY}
    - kind: webhook
      url: https://alerts.internal/hook
      headers:
        Authorization: {HEADER}
        X-From-Env: ${{HOOK_TOKEN}}
"""


def _show(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", "config", "show", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
        check=False,
    )


def test_config_show_hides_secrets_and_shows_them_on_request(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text(CONFIG)
    secrets = (PASSWORD, SLACK_PATH, PD_KEY, HEADER)

    plain = _show(tmp_path)
    as_json = _show(tmp_path, "--json")
    for done in (plain, as_json):
        assert done.returncode == 0, done.stderr
        assert not [s for s in secrets if s in done.stdout + done.stderr], done.stdout
    shown = yaml.safe_load(plain.stdout)
    assert shown == json.loads(as_json.stdout)
    assert shown["database_url"] == "postgresql+psycopg://ana:***@db.internal/shipyard"
    slack, pagerduty, webhook = shown["monitoring"]["routes"]
    assert slack["url"] == "https://hooks.slack.com/***"
    assert pagerduty["url"] == "https://events.pagerduty.com/v2/enqueue"  # not a secret
    assert pagerduty["routing_key"] == "***"
    # An ${ENV_VAR} reference is not the secret: it stays as written.
    assert webhook["headers"] == {"Authorization": "***", "X-From-Env": "${HOOK_TOKEN}"}
    assert webhook["url"] == "https://alerts.internal/hook"

    revealed = _show(tmp_path, "--show-secrets")
    assert revealed.returncode == 0, revealed.stderr
    assert all(s in revealed.stdout for s in secrets), revealed.stdout
