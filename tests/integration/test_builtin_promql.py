"""Every built-in signal's PromQL, for every source and a full scope, parses (``promtool``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tuner.signals.base import SignalRef
from tuner.signals.builtin import SOURCES
from tuner.signals.prometheus import expression
from tuner.signals.settings import Scope, SignalSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed"),
]

SCOPES = {
    "fleet": Scope(
        model='meta-llama/"quoted"', target="llm/vllm-.*", namespace="llm|canary", node="n.*"
    ),
    "loadgen": Scope(),
    "haproxy": Scope(backend="llm|llm_leastconn"),
}


def test_every_builtin_query_is_valid_promql(tmp_path: Path):
    rules = []
    for source, table in SOURCES.items():
        settings = SignalSettings(source=source, scope=SCOPES[source])
        for i, name in enumerate(sorted(table)):
            query = expression(SignalRef(signal=name), 30, settings)
            rules.append({"record": f"check:{source}:{i}", "expr": query})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "builtins", "rules": rules}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
