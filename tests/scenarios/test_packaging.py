"""The distributions a release uploads: what the sdist and the wheel carry, and their metadata.

Built with ``python -m build`` as a release would be (sdist first, the wheel from the unpacked
sdist, so the sdist is proven to build), from a copy of the work tree so that the build leaves
nothing in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

import django_sse
from tests.support.servers import ROOT

pytestmark = pytest.mark.server  # builds in subprocesses, with an isolated build environment

NAME = "django-eventsource"
# Never copied into the build: virtualenvs, caches, earlier builds, test output.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv*", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".hypothesis",
    "artifacts", ".cache", "db.sqlite3", "results",
)  # fmt: skip


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(path).decode())


def sdist_names(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        # Relative to the sdist's top folder (django_eventsource-<version>/).
        return [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]


def test_file_names_carry_the_distribution_name_and_the_version(dists: dict[str, Path]) -> None:
    version = django_sse.__version__
    assert dists["sdist"].name == f"django_eventsource-{version}.tar.gz"
    assert dists["wheel"].name == f"django_eventsource-{version}-py3-none-any.whl"


def test_the_wheel_holds_the_app_typed_with_its_client_and_the_license(
    dists: dict[str, Path],
) -> None:
    names = wheel_names(dists["wheel"])
    dist_info = f"django_eventsource-{django_sse.__version__}.dist-info"
    assert "django_sse/py.typed" in names
    assert "django_sse/static/django_sse/sse.js" in names
    assert "django_sse/templatetags/sse.py" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    # Nothing but the app and its metadata: no tests, no demo project, no templates of the demo.
    assert {name.split("/", 1)[0] for name in names} == {"django_sse", dist_info}


def test_the_wheel_metadata(dists: dict[str, Path]) -> None:
    metadata = wheel_metadata(dists["wheel"])
    assert metadata["Name"] == NAME
    assert metadata["Version"] == django_sse.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    classifiers = metadata.get_all("Classifier") or []
    assert "Development Status :: 4 - Beta" in classifiers
    assert {"Programming Language :: Python :: 3.11", "Framework :: Django :: 5.2"} <= set(
        classifiers
    )
    assert not [c for c in classifiers if c.startswith("License ::")]  # superseded by SPDX
    # The demo's extra brings what `make demo` runs on, and not the test toolchain.
    demo = [r for r in metadata.get_all("Requires-Dist") or [] if 'extra == "demo"' in r]
    assert demo == [f'{NAME}[daphne,postgres,redis]; extra == "demo"']


def test_the_sdist_carries_the_app_and_its_documents_but_no_tests(dists: dict[str, Path]) -> None:
    names = sdist_names(dists["sdist"])
    for required in [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "django_sse/py.typed",
        "django_sse/static/django_sse/sse.js",
    ]:
        assert required in names, required
    # Its tests would need the repository (demo project, Redis, PostgreSQL, Chromium).
    assert not [name for name in names if name.startswith("tests")]


def test_the_installed_wheel_imports_with_its_version_and_client(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "site"
    wheel = str(dists["wheel"])
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
        timeout=300,
    )
    code = (
        "import importlib.metadata, importlib.resources, django_sse;"
        "print(django_sse.__file__);"
        "print(django_sse.__version__, importlib.metadata.version('django-eventsource'));"
        "print((importlib.resources.files('django_sse') / 'static/django_sse/sse.js').is_file())"
    )
    # -S: no site-packages .pth files, so the checkout's editable install cannot answer; the
    # dependencies (Django, pydantic, ...) still come from this virtualenv's site-packages.
    path = [str(target), sysconfig.get_paths()["purelib"]]
    output = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {path!r}; {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    assert output[0].startswith(str(target))
    assert output[1] == f"{django_sse.__version__} {django_sse.__version__}"
    assert output[2] == "True"


def test_make_demo_installs_the_demo_extra_not_the_test_toolchain(tmp_path: Path) -> None:
    # A dry run: what `make demo` would run in a fresh clone (no virtualenv yet).
    commands = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    installs = [line for line in commands.splitlines() if " pip install " in line]
    assert [line for line in installs if "-e '.[demo]'" in line], commands
    assert not [line for line in installs if "[test]" in line], commands
