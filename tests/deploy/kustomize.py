"""Rendering the kustomize tree with ``kubectl kustomize``, for the manifest and chart tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

K8S_VERSION = "1.33.0"


def kustomize_available() -> bool:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return False
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True)
    match = re.search(r"Kustomize Version: v(\d+)", out.stdout)
    return match is not None and int(match.group(1)) >= 5


def render(directory: Path) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]
