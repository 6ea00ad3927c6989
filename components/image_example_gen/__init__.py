"""ImageExampleGen: image folders, IDX files and .npz arrays -> tf.Example splits.

Modules, one job each:
  sources     format detection, input listing, preflight (no Beam, no TFX)
  arrays      IDX / npz readers and array -> PNG encoding
  validation  the per-image check shared by preflight and the Beam DoFn
  ingest      the Beam transform (decode, validate, split, write, count)
  report      the ingest report: counting rejections and assembling the JSON
  executor    the TFX executor; component: the TFX component spec
"""
