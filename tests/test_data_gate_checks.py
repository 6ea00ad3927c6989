"""The gate's rules on plain data; the whole gate runs in tests/test_end_to_end.py."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2

from ganpipe.components.data_gate import checks


def test_anomalies_are_named_by_split_and_feature():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["channels"]
    info.reason.add(short_description="Out-of-range values", description="Unexpectedly large value: 3.")
    assert checks.anomaly_problems("eval", anomalies) == [
        "eval split, feature 'channels': Unexpectedly large value: 3."
    ]
    assert checks.anomaly_problems("eval", anomalies_pb2.Anomalies()) == []


def test_rejected_share_above_the_limit_stops_with_counts_by_reason():
    report = {"total_files": 40, "rejected_total": 4, "bad_fraction": 0.1,
              "rejected": {"corrupt_or_truncated": 3, "empty_file": 1, "not_an_image": 0}}
    (problem,) = checks.ingest_problems(report, max_bad_fraction=0.05)
    assert "4 of 40" in problem and "10.0%" in problem
    assert "corrupt_or_truncated=3" in problem and "empty_file=1" in problem and "not_an_image" not in problem
    assert checks.ingest_problems(report, max_bad_fraction=0.10) == []


def test_empty_or_tiny_splits_stop():
    assert checks.size_problems({"train": 100, "eval": 0}, 16) == ["eval split is empty"]
    (one,) = checks.size_problems({"train": 100, "eval": 1}, 16)
    assert "eval split has 1 image" in one and "data.eval_fraction" in one
    assert checks.size_problems({"train": 100, "eval": 2}, 16) == []
    assert "fewer than data.min_images=16" in checks.size_problems({"train": 5, "eval": 2}, 16)[0]
    assert checks.size_problems({"train": 16, "eval": 2}, 16) == []


def test_a_small_split_of_copies_says_how_many_images_are_distinct():
    report = {"accepted": 64, "distinct": 1}
    assert checks.size_problems({"train": 64, "eval": 0}, 16, report) == [
        "eval split is empty",
        "64 images, 1 distinct: copies of one image have one sha256 and land in one split; add different images"]
    assert checks.size_problems({"train": 60, "eval": 4}, 16, {"accepted": 64, "distinct": 60}) == []
    assert checks.size_problems({"train": 64, "eval": 0}, 16, {"accepted": 64, "distinct": 64}) == [
        "eval split is empty"]


def test_an_eval_split_too_small_for_the_gates_limits_stops_before_training():
    """A k-NN limit needs more than k real eval images; without them the evaluator could only refuse,
    after the whole training. evaluate.min_coverage (k=5) needs 6, min_recall (k=3) 4, FID alone 2."""
    from ganpipe.evaluation.config import EvaluateConfig

    assert EvaluateConfig().min_eval_images() == 2  # the defaults: the floor-relative coverage switches off
    assert EvaluateConfig(min_recall=0.5).min_eval_images() == 4
    assert EvaluateConfig(min_coverage=0.2, min_recall=0.5).min_eval_images() == 6
    (problem,) = checks.size_problems({"train": 100, "eval": 5}, 16, min_eval_images=6)
    assert problem.startswith("eval split has 5 images: the gate's limits") and "at least 6" in problem
    assert checks.size_problems({"train": 100, "eval": 6}, 16, min_eval_images=6) == []


def test_the_pipeline_hands_the_gate_what_the_evaluator_needs():
    from ganpipe.pipeline.config import load_config
    from ganpipe.pipeline.pipeline import create_pipeline

    config = load_config(None, {"evaluate.min_coverage": "0.3", "output_dir": "/tmp/ganpipe-gate-spec"})
    pipeline = create_pipeline(config, data_path="/tmp/none", data_format="folder")
    (gate,) = [node for node in pipeline.components if node.id == "DataGate"]
    assert gate.exec_properties["min_eval_images"] == 6
