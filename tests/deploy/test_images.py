"""deploy/Dockerfile: two images, pinned bases, real COPY sources, console-script entrypoints.

No container engine runs on the test machines, so the build files are checked as files: what
``docker build`` would resolve (stages, ARG defaults, COPY sources) is resolved here.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# Base images whose tags were checked to exist on the registry they name, with the images
# that pin them; bump both together.
VERIFIED_BASE_IMAGES = {"docker.io/library/python:3.11.11-slim-bookworm"}
VERIFIED_SIDECAR_IMAGES = {"quay.io/brancz/kube-rbac-proxy:v0.19.1"}
IMAGE_ENTRYPOINTS = {"agent": "tuneloop-agent", "tuner": "tuneloop"}


@dataclass
class Stage:
    """One FROM ... AS name block."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    found: list[Stage] = []
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "ARG" and not found:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            base, _, name = re.sub(r"\s+AS\s+", " AS ", rest, flags=re.I).partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.strip())
            found.append(Stage(name.strip(), base))
        elif found:
            found[-1].instructions.append((word, rest))
    return args, found


def by_name() -> dict[str, Stage]:
    return {s.name: s for s in stages()[1]}


def chain(name: str) -> list[Stage]:
    """The stage and every stage it is built FROM, nearest first."""
    named = by_name()
    result = [named[name]]
    while result[-1].base in named:
        result.append(named[result[-1].base])
    return result


def test_base_images_are_pinned_and_verified() -> None:
    named = {s.name for s in stages()[1]}
    bases = {s.base for s in stages()[1] if s.base not in named}
    assert bases and bases <= VERIFIED_BASE_IMAGES, bases - VERIFIED_BASE_IMAGES
    for base in bases:
        registry, _, rest = base.partition("/")
        assert "." in registry, f"{base}: name the registry"
        assert re.search(r":\d+\.\d+\.\d+", rest), f"{base}: pin a full version tag"


def test_every_copy_source_exists() -> None:
    copies = 0
    for stage in stages()[1]:
        for word, rest in stage.instructions:
            if word != "COPY" or rest.startswith("--from"):
                continue
            *sources, _ = shlex.split(rest)
            for source in sources:
                copies += 1
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert copies >= 4


def test_entrypoints_are_declared_console_scripts() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    named = by_name()
    for image, script in IMAGE_ENTRYPOINTS.items():
        entry = [rest for word, rest in named[image].instructions if word == "ENTRYPOINT"]
        assert entry and json.loads(entry[-1]) == [script], image
        assert script in scripts


def test_agent_image_installs_only_the_agent_extra() -> None:
    named = by_name()
    sources = {
        rest.split()[0].removeprefix("--from=")
        for word, rest in named["agent"].instructions
        if word == "COPY" and rest.startswith("--from=")
    }
    assert sources == {"build-agent"}
    installs, copied = [], []
    for stage in chain("build-agent"):
        for word, rest in stage.instructions:
            if word == "RUN" and "pip install" in rest and "--upgrade pip" not in rest:
                installs.append(rest)
            if word == "COPY":
                copied += shlex.split(rest)[:-1]
    assert installs == ["/opt/tuneloop/bin/pip install '.[agent]'"]
    assert "tuner" not in copied and "lab" not in copied
    tuner_installs = [rest for word, rest in named["build-tuner"].instructions if word == "RUN"]
    assert tuner_installs == ["/opt/tuneloop/bin/pip install '.[tuner]'"]


def test_images_run_as_non_root_by_default() -> None:
    for image in IMAGE_ENTRYPOINTS:
        users = [
            rest
            for stage in chain(image)  # nearest stage first, last instruction first
            for word, rest in reversed(stage.instructions)
            if word == "USER"
        ]
        assert users and not users[0].startswith(("0", "root")), image


def test_make_images_builds_both_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nimages:", 1)[1].split("\n\n", 1)[0]
    assert "--target agent" in recipe and "--target tuner" in recipe
    assert "-f deploy/Dockerfile" in recipe


def test_manifests_use_the_image_of_their_side() -> None:
    base = yaml.safe_load((ROOT / "deploy/base/kustomization.yaml").read_text())
    names = {i["name"]: i["newName"] for i in base["images"]}
    assert names == {
        "tuneloop-agent": "ghcr.io/tuneloop/tuneloop-agent",
        "tuneloop-tuner": "ghcr.io/tuneloop/tuneloop-tuner",
    }
    values = yaml.safe_load((ROOT / "deploy/helm/tuneloop/values.yaml").read_text())
    assert values["agent"]["image"]["repository"] == names["tuneloop-agent"]
    assert values["tuner"]["image"]["repository"] == names["tuneloop-tuner"]
    proxy = values["agent"]["kubeRbacProxy"]["image"]
    assert f"{proxy['repository']}:{proxy['tag']}" in VERIFIED_SIDECAR_IMAGES
