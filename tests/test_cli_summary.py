"""The closing lines of `ganpipe run` when the gate refuses a candidate far from the real data."""

from __future__ import annotations

import json

from ganpipe.cli.summary import train_longer_hint
from ganpipe.pipeline.config import load_config

FAR = ("candidate FID 2.2465 is 9.2x the real floor's 0.2432; evaluate.max_fid_over_floor=8 allows <= 1.9455")
WORSE = "candidate FID 1.3 is not better than the serving baseline's 1.2 (evaluate.min_improvement=0)"


def _config(image_size: int, steps: int):
    config = load_config(None, {"train.steps": str(steps)})
    config.train.image_size, config.train.channels = image_size, 1  # as the preflight settles `auto`
    return config


def test_a_candidate_far_from_the_floor_is_told_how_much_it_trained(tmp_path):
    (tmp_path / "ingest_report.json").write_text(json.dumps({"splits": {"train": 63000, "eval": 7000}}))
    hint = train_longer_hint(_config(32, 600), {"reasons": [FAR]}, str(tmp_path))
    # dcgan-tutorial at 32 px, batch 64 (trainer/config.py ARCHITECTURE_DEFAULTS): 600 * 64 / 63,000 = 0.6
    assert hint == ("ganpipe: the candidate is still far from the real images (600 steps of 64 images, 0.6 passes "
                    "over 63,000 training images): train longer with --steps, or loosen "
                    "evaluate.max_fid_over_floor / min_coverage_of_floor if this data needs it")


def test_other_refusals_get_no_hint_and_tfrecord_input_no_pass_count(tmp_path):
    assert train_longer_hint(_config(32, 600), {"reasons": [WORSE]}, str(tmp_path)) is None
    assert train_longer_hint(_config(32, 600), None, None) is None
    # TFRecords come through ImportExampleGen, which writes no ingest report.
    hint = train_longer_hint(_config(64, 2000), {"reasons": [WORSE, FAR]}, str(tmp_path))
    assert "(2,000 steps of 64 images)" in hint
