"""The optional extras are installed, at their pins, wherever the tests run.

Tests that need an extra skip without it (tests/test_cnn.py). CI once installed only
`.[dev]`, so the CNN tests skipped on every run and a broken pin in `[cnn]` went unseen.
These checks turn "not installed" into a failure: every extra of pyproject.toml is offered
by the README and installed here, every pinned requirement (core or extra) is satisfied by
the installed version, and each requirement's modules import.

An environment made on purpose with fewer extras says which ones in BOVW_TEST_EXTRAS
(comma-separated; .ci/run's second environment, on the oldest supported pyspark, has
"dev"): the others are then skipped, with that reason, instead of failing. Unset: every
extra is expected.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT.get("optional-dependencies", {})
INSTALL = 'pip install -e ".[{}]"'.format(",".join(EXTRAS))
EXPECTED_VARIABLE = "BOVW_TEST_EXTRAS"


def expected_extras(environ: Mapping[str, str]) -> set[str]:
    """The extras this environment is meant to have: BOVW_TEST_EXTRAS, else all of them."""
    listed = environ.get(EXPECTED_VARIABLE)
    if listed is None:
        return set(EXTRAS)
    names = {name.strip() for name in listed.split(",") if name.strip()}
    unknown = names - set(EXTRAS)
    if unknown:
        raise ValueError(f"{EXPECTED_VARIABLE} names extras pyproject.toml does not define: "
                         f"{', '.join(sorted(unknown))}")
    return names


def _skip_unless_expected(group: str | None) -> None:
    if group is not None and group not in expected_extras(os.environ):
        pytest.skip(f"this environment is made without the [{group}] extra "
                    f"({EXPECTED_VARIABLE}={os.environ[EXPECTED_VARIABLE]})")


def _requirements(group: str | None) -> list[Requirement]:
    texts = PROJECT["dependencies"] if group is None else EXTRAS[group]
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


def problems(requirement: Requirement, installed: dict[str, str]) -> list[str]:
    """What is wrong with `requirement` given `installed` (canonical name -> version)."""
    version = installed.get(canonicalize_name(requirement.name))
    if version is None:
        return [f"{requirement} is not installed"]
    if not requirement.specifier.contains(version, prereleases=True):
        return [f"{requirement} is not satisfied: {version} is installed"]
    return []


def installed_versions() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def _extras_offered_by_readme() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    return {name.strip() for group in re.findall(r'pip install -e "\.\[([^\]]+)\]"', readme)
            for name in group.split(",")}


def test_every_extra_is_offered_by_the_readme():
    offered = _extras_offered_by_readme()
    assert set(EXTRAS) <= offered, f"extras the README never installs: {set(EXTRAS) - offered}"
    assert offered <= set(EXTRAS), f"the README offers undefined extras: {offered - set(EXTRAS)}"


@pytest.mark.parametrize("group", [None, *EXTRAS])
def test_every_requirement_is_installed_at_its_pin(group):
    _skip_unless_expected(group)
    installed = installed_versions()
    found = [problem for requirement in _requirements(group)
             for problem in problems(requirement, installed)]
    where = "the core dependencies" if group is None else f"the [{group}] extra"
    assert not found, (f"{where}: {'; '.join(found)}. Pin released versions only, and "
                       f"install every extra: {INSTALL}")


@pytest.mark.parametrize("group", list(EXTRAS))
def test_the_modules_of_every_extra_import(group):
    """Installed but unimportable (a wheel for another torch, a missing native library)
    would skip the tests that need it just like not installed."""
    _skip_unless_expected(group)
    by_distribution: dict[str, list[str]] = {}
    for module, names in metadata.packages_distributions().items():
        for name in names:
            by_distribution.setdefault(canonicalize_name(name), []).append(module)
    for requirement in _requirements(group):
        name = canonicalize_name(requirement.name)
        modules = by_distribution.get(name, [])
        own = [m for m in modules if canonicalize_name(m) == name]
        for module in own or [m for m in modules if not m.startswith("_")]:
            importlib.import_module(module)


def test_a_pin_to_a_missing_release_is_reported():
    installed = {"efficientnet-lite-pytorch": "0.1.0", "torch": "2.13.0+cpu"}
    # The version bump to 0.2.0 rewrote these pins too; only 0.1.0 was ever released.
    assert problems(Requirement("efficientnet-lite-pytorch==0.2.0"), installed) == [
        "efficientnet-lite-pytorch==0.2.0 is not satisfied: 0.1.0 is installed"]
    assert problems(Requirement("efficientnet_lite_pytorch==0.1.0"), installed) == []
    assert problems(Requirement("torch==2.13.0"), installed) == []  # local label +cpu
    assert problems(Requirement("onnxruntime>=1"), installed) == [
        "onnxruntime>=1 is not installed"]


def test_expected_extras():
    assert expected_extras({}) == set(EXTRAS)
    assert expected_extras({EXPECTED_VARIABLE: "dev"}) == {"dev"}
    assert expected_extras({EXPECTED_VARIABLE: " dev , cnn "}) == {"dev", "cnn"}
    assert expected_extras({EXPECTED_VARIABLE: ""}) == set()
    with pytest.raises(ValueError, match="BOVW_TEST_EXTRAS names extras pyproject.toml does "
                                         "not define: gpu"):
        expected_extras({EXPECTED_VARIABLE: "dev,gpu"})
