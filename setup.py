"""ganpipe: a GAN pipeline on TFX and Kubeflow.

The exact working set (every transitive package) is pinned in
requirements/constraints.txt; `make venv` installs with it so a fresh machine
resolves the same versions that were tested. The ranges below are what the
code needs; the constraints file is what we ship.
"""

from setuptools import find_packages, setup

# One import name for everything: each top-level folder installs as a
# subpackage of `ganpipe` (the folder `ganpipe/` holds only the package root
# and the shared contract), so nothing generic such as `pipeline` or `trainer`
# lands in site-packages next to a user's own modules.
SUBPACKAGE_FOLDERS = ("pipeline", "components", "trainer", "evaluation", "cli", "kubeflow", "serving")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = ["ganpipe"], {"ganpipe": "ganpipe"}
    for folder in SUBPACKAGE_FOLDERS:
        package_dir[f"ganpipe.{folder}"] = folder
        packages += [f"ganpipe.{folder}"] + [f"ganpipe.{folder}.{sub}" for sub in find_packages(where=folder)]
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    name="ganpipe",
    version="0.1.0",
    description="Images in, a better GAN generator served out: TFX + Kubeflow.",
    python_requires="==3.10.*",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tensorflow-data-validation==1.16.1",
        "apache-beam==2.74.0",
        "kfp==2.5.0",
        # tfx-bsl imports dill, which apache-beam 2.74 no longer pulls in.
        "dill",
        "Pillow",
        "PyYAML",
        "scipy",
        "scikit-learn",
        "matplotlib",
        "tqdm",
    ],
    # kubernetes-validate: the k8s/ manifest tests (offline Kubernetes 1.32 schemas).
    # gcp-storage-emulator, cryptography: the GCS stand-in of the object-storage tests (tests/gcs_stand_in.py).
    extras_require={"test": ["pytest", "kubernetes-validate", "gcp-storage-emulator", "cryptography"]},
    entry_points={"console_scripts": ["ganpipe=ganpipe.cli.main:main"]},
)
