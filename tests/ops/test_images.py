"""Every image the deployment pulls is pinned by digest; the only exception is Gleaner's own, built from source."""

from __future__ import annotations

import re

import pytest

from tests.ops.test_compose import _config
from tests.ops.test_dockerfile import DOCKERFILE, _instructions
from tests.ops.test_kubernetes import TARGETS, render

PINNED = re.compile(r"^[\w.\-/:]+:[\w.\-]+@sha256:[0-9a-f]{64}$")
# Built by this repository (compose builds it, the release pipeline pushes it): pinned where it is released,
# by the kustomize `images:` entry of the deploying overlay (deploy/README.md, "Images").
OWN_IMAGES = {"gleaner:local", "ghcr.io/example/gleaner"}


def _dockerfile_images() -> list[str]:
    syntax = [line.split("=", 1)[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("# syntax=")]
    defaults = dict(args.split("=", 1) for name, args in _instructions() if name == "ARG" and "=" in args)
    stages: set[str] = set()
    images = []
    for name, args in _instructions():
        if name == "FROM":
            image, *alias = args.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image)
            if image not in stages:
                images.append(image)
            stages.update(alias[1:] if alias and alias[0].upper() == "AS" else [])
    return syntax + images


def test_the_dockerfile_frontend_and_every_base_image_are_pinned_by_digest() -> None:
    images = _dockerfile_images()
    assert images, "no FROM found"
    assert [image for image in images if not PINNED.match(image)] == []


def test_every_compose_image_is_pinned_by_digest_except_the_one_built_here() -> None:
    services = _config()["services"]
    unpinned = {
        name: s["image"]
        for name, s in services.items()
        if not PINNED.match(s["image"]) and s["image"] not in OWN_IMAGES
    }
    assert not unpinned
    built = {s["image"] for s in services.values() if s["image"] in OWN_IMAGES}
    assert all("build" in s for s in services.values() if s["image"] in built)


@pytest.mark.parametrize("target", TARGETS)
def test_every_kubernetes_container_runs_a_pinned_image_or_gleaner_s_own(target: str) -> None:
    images = {
        container["image"]
        for obj in render(target)
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob")
        for container in _pod(obj)["containers"] + _pod(obj).get("initContainers", [])
    }
    assert {i for i in images if not PINNED.match(i) and i.rsplit(":", 1)[0] not in OWN_IMAGES} == set()


def _pod(obj: dict[str, object]) -> dict[str, list[dict[str, str]]]:
    spec: dict[str, object] = obj["spec"]  # type: ignore[assignment]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]  # type: ignore[index]
    return spec["template"]["spec"]  # type: ignore[index,no-any-return]
