"""The installed project is one package, `ganpipe`, and never shadows a user's own modules.

A user whose project has a `pipeline.py` (or `trainer/`, `components/`) must
be able to import it next to ganpipe. This builds the real wheel, installs it
into a fresh virtual environment and imports both from a user's folder.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGE_FOLDERS = ("pipeline", "components", "trainer", "evaluation", "cli", "kubeflow", "serving")


def _base_python() -> str:
    """The interpreter the project venv was made from (a new venv must not nest inside it)."""
    home = next(line.split("=", 1)[1].strip() for line in Path(sys.prefix, "pyvenv.cfg").read_text().splitlines()
                if line.startswith("home"))
    return str(Path(home) / f"python{sys.version_info.major}.{sys.version_info.minor}")


def test_wheel_installs_exactly_one_top_level_package_beside_a_users_pipeline_module(tmp_path):
    # Built from a copy of the sources: setuptools writes build/ and *.egg-info next to setup.py.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, source / name)
    for folder in ("ganpipe", *SUBPACKAGE_FOLDERS):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    wheel_dir = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheel_dir), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheel_dir.glob("ganpipe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"ganpipe", "ganpipe-0.1.0.dist-info"}, tops
    for package in SUBPACKAGE_FOLDERS:
        assert f"ganpipe/{package}/__init__.py" in names, package
    assert not any(name.startswith("ganpipe/tests/") or name.startswith("ganpipe/bench/") for name in names)

    venv = tmp_path / "clean"
    subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        check=True, capture_output=True, text=True).stdout.strip())
    installed = {entry.name for entry in site_packages.iterdir() if not entry.name.startswith(("_", "."))}
    assert installed == {"ganpipe", "ganpipe-0.1.0.dist-info"}, installed
    # Third-party dependencies come from the project venv; a path added by a .pth file is not
    # itself scanned for .pth files, so the project's editable install does not leak in.
    (site_packages / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    user_project = tmp_path / "user_project"
    user_project.mkdir()
    (user_project / "pipeline.py").write_text("WHOSE = 'the user'\n")
    (user_project / "trainer.py").write_text("WHOSE = 'the user'\n")
    script = ("import pipeline, trainer; "
              "from ganpipe.pipeline.config import load_config; import ganpipe.trainer.task; "
              "import ganpipe.cli.main as cli; "
              "print(pipeline.WHOSE, trainer.WHOSE, load_config().train.steps, cli.__file__, sep='|')")
    result = subprocess.run([str(python), "-c", script], cwd=user_project, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    whose_pipeline, whose_trainer, steps, cli_file = result.stdout.strip().splitlines()[-1].split("|")
    assert whose_pipeline == whose_trainer == "the user"
    assert steps == "0"  # auto: resolved from the image size (trainer.config.resolve_steps)
    assert cli_file.startswith(str(site_packages)), f"ganpipe came from {cli_file}, not the clean venv"
