"""SyntheticExampleGen: a pushed generator's samples as a standard Examples artifact, and `ganpipe generate`'s export.

Modules, one job each (only `component` and `executor` import TFX; `request` not even TensorFlow):
  request   what an export may be asked for: formats, counts, seeds, output folder (plain Python)
  samples   the generator side: its signatures and classes, samples batch by batch
  writers   streaming writers (TFRecord shards, class folders) and the atomic publish
  export    one export start to finish, shared by the CLI and the executor
  executor  the TFX executor; component: the TFX component spec
"""
