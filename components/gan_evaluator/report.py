"""The ModelEvaluation artifact's contents: metrics.json, sample grids and a page a person opens.

The page states the verdict first, then every reason, then the numbers with
what they are comparable to, then the pictures: the question a reader has is
"why was this (not) shipped?".
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.utils import io_utils

from ganpipe.trainer import visualize

METRICS_FILE = "metrics.json"
INDEX_FILE = "index.html"
CANDIDATE_PNG = "candidate_samples.png"
BASELINE_PNG = "baseline_samples.png"
REAL_PNG = "real_samples.png"

COLUMNS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "diversity", "inception_score",
           "inception_score_std")
CAS_ROWS = (("cas", "CAS: trained on generated images, accuracy on real eval"),
            ("real_accuracy", "the same classifier trained on as many real images"),
            ("cas_ratio", "CAS / real accuracy"),
            ("fraction_accuracy", "trained on the real fraction only"),
            ("fraction_plus_synthetic_accuracy", "the real fraction plus the generated images"),
            ("augmentation_gain", "augmentation gain (difference of the two above)"))
ROLES = (("candidate", "candidate"), ("baseline", "baseline (last blessed)"),
         ("real_floor", "real floor (train vs eval)"))
# Headline numbers also stored as custom properties, for MLMD queries and UIs.
PROPERTY_METRICS = ("fid", "kid", "recall", "coverage", "inception_score")


def write_evaluation(evaluation: types.Artifact, report: dict[str, Any], candidate_images: np.ndarray,
                     baseline_images: Optional[np.ndarray], real_images: np.ndarray) -> None:
    folder = evaluation.uri
    tf.io.gfile.makedirs(folder)
    io_utils.write_string_file(os.path.join(folder, METRICS_FILE), json.dumps(report, indent=2))
    pictures = []
    if _is_picture(candidate_images):
        visualize.save_image_grid(candidate_images, os.path.join(folder, CANDIDATE_PNG), title="candidate")
        pictures.append((CANDIDATE_PNG, "candidate generator"))
    if baseline_images is not None and _is_picture(baseline_images):
        visualize.save_image_grid(baseline_images, os.path.join(folder, BASELINE_PNG),
                                  title="baseline (last blessed)")
        pictures.append((BASELINE_PNG, "baseline generator (same seeds)"))
    if _is_picture(real_images):
        visualize.save_image_grid(real_images, os.path.join(folder, REAL_PNG), title="real (eval)")
        pictures.append((REAL_PNG, "real images (eval split)"))
    io_utils.write_string_file(os.path.join(folder, INDEX_FILE), index_html(report, pictures))
    evaluation.set_string_custom_property("extractor", report["extractor"])
    evaluation.set_int_custom_property("blessed", int(report["blessed"]))
    for role, _ in ROLES:
        for metric in PROPERTY_METRICS:
            value = (report.get(role) or {}).get(metric)
            if value is not None:
                evaluation.set_float_custom_property(f"{role}_{metric}", float(value))
    for key in ("cas", "cas_ratio", "augmentation_gain"):
        value = (report.get("cas") or {}).get(key)
        if value is not None:
            evaluation.set_float_custom_property(key, float(value))


def _is_picture(images: np.ndarray) -> bool:
    return images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] in (1, 3) and len(images) > 0


def index_html(report: dict[str, Any], pictures: list[tuple[str, str]]) -> str:
    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))

    rows = []
    for key, label in ROLES:
        scores = report.get(key) or {}
        cells = "".join(f"<td>{number(scores.get(column))}</td>" for column in COLUMNS)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    verdict = "BLESSED" if report["blessed"] else "NOT BLESSED"
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in report["reasons"]) or "<li>none</li>"
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report["notes"]) or "<li>none</li>"
    limits = ", ".join(f"{key}={value:g}" + (" (off)" if not value and key != "min_improvement" else "")
                       for key, value in report["settings"].items()
                       if isinstance(value, float))
    images = "".join(
        f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for path, caption in pictures)
    extractor = html.escape(report["extractor"])
    comparable = ("These are standard Inception (pool3) FIDs only as far as the images allow: tiny images "
                  "upsampled to 299x299 are not comparable with published numbers."
                  if report["extractor"] == "inception-v3-pool3" else
                  "These are FIDs in the feature space of the original TF Inception graph (2015-12-05) that "
                  "published FIDs use; they compare with papers' numbers at the same sample count and reference."
                  if report["extractor"].startswith("inception-2015-12-05-pool3") else
                  f"These numbers are comparable only with numbers from the same extractor ({extractor}); "
                  "they are not Inception FID.")
    classifier = report.get("classifier") or {}
    if classifier:
        accuracy = classifier.get("eval_accuracy")
        classifier_text = (f"<p>Inception Score (Salimans et al. 2016, 10 splits) from classifier "
                           f"<b>{html.escape(str(classifier['name']))}</b>"
                           + (f", eval accuracy {accuracy:.4f} on {classifier['eval_images']} real images "
                              f"({'loaded from the cache' if classifier.get('cached') else 'trained this run'})"
                              if accuracy is not None else "")
                           + "; higher is better, comparable only with scores from the same classifier.</p>")
    else:
        classifier_text = "<p>No Inception Score: no classifier (see the notes).</p>"
    cas = report.get("cas") or {}
    cas_text = ""
    if cas:
        cas_rows = "".join(f"<tr><th>{html.escape(label)}</th><td>{number(cas.get(key))}</td></tr>"
                           for key, label in CAS_ROWS)
        cas_text = (f"<h2>Classification Accuracy Score</h2><p>Ravuri &amp; Vinyals 2019: the domain classifier "
                    f"trained on {cas.get('samples')} generated labelled images, tested on {cas.get('eval_images')} "
                    f"real eval images. Augmentation gain at {cas.get('real_fraction')} of the real train split "
                    f"({cas.get('fraction_images')} images).</p><table>{cas_rows}</table>"
                    + (f"<p>{html.escape(str(cas['error']))}</p>" if cas.get("error") else ""))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>GanEvaluator: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em .8em;text-align:right}}
th{{text-align:left}} table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}}
figure{{display:inline-block;margin:1em}} img{{max-width:480px;image-rendering:pixelated}}
.verdict{{color:{"#1a7f37" if report["blessed"] else "#cf222e"}}}</style></head>
<body>
<h1 class="verdict">{verdict}</h1>
<h2>Why not blessed</h2><ul>{reasons}</ul>
<h2>Scores</h2>
<p>Feature extractor <b>{extractor}</b>; {report["num_samples"]} generated samples per generator
(seeds {report["seed"]}..{report["seed"] + report["num_samples"] - 1}, the same for candidate and baseline)
vs {report["num_real_eval"]} real eval images. {comparable}
The real floor is what real (train split) images score against the eval split: the best a generator can hope for.</p>
<p>Lower is better for fid and kid. Precision: share of samples that look real. Recall and coverage: share of
the real data the samples reach; a generator stuck on few modes scores low here even when its FID looks fine.
Diversity: spread of the samples relative to real images (about 1 is right).</p>
{classifier_text}
<table><tr><th></th>{"".join(f"<th>{column}</th>" for column in COLUMNS)}</tr>
{"".join(rows)}</table>
{cas_text}
<p>Limits: {html.escape(limits)}</p>
<h2>Notes</h2><ul>{notes}</ul>
{images}
</body></html>
"""
