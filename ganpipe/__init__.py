"""ganpipe: images in, a better GAN generator served out (TFX + Kubeflow).

One import name for the whole project. The repository's top-level folders
install as its subpackages (setup.py ``package_dir``):

- ``ganpipe.pipeline``   (pipeline/): the config and ``create_pipeline``, the local runner, input resolution
- ``ganpipe.components`` (components/): the TFX components this project adds
- ``ganpipe.trainer``    (trainer/): the GAN and its training loop; never imports TFX
- ``ganpipe.evaluation`` (evaluation/): FID/KID/precision-recall and feature extractors; never imports TFX
- ``ganpipe.serving``    (serving/): clients of a pushed generator (``generate``, TF Serving REST/gRPC)
- ``ganpipe.kubeflow``   (kubeflow/): compile, submit and schedule on Kubeflow Pipelines
- ``ganpipe.cli``        (cli/): the ``ganpipe`` command
- ``ganpipe.contract``: the tf.Example feature and signature names every part shares
- ``ganpipe.settings``, ``ganpipe.native_noise``: the settings dataclasses' ``from_dict``; TF's
  known-harmless native log lines kept off the terminal

Imports flow one way: cli -> pipeline / kubeflow / serving -> components -> trainer, evaluation -> contract.
"""

__version__ = "0.1.0"
