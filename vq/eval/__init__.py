"""Evaluation: every harness that measures a model or a pipeline step, and their metrics.

Harnesses (each registered in `vq.tasks.EVALUATORS`, run as ``vq eval NAME``):

* `pairs`        single-frame copy detection: the embedding vs PDQ / thumbnail / random
                 init on edited pairs of held-out sources;
* `dedup`        the copy-detection benchmark: edited, sped-up and partial copies of
                 source clips through the production `vq run` pipeline;
* `content_box`  how well the content box finds the picture inside padding and pages;
* `sr`           super-resolution PSNR-Y vs bicubic on held-out image sets.

Metrics, one module per kind: `metrics.retrieval` (ROC, TPR at a fixed FPR, segment µAP,
VCSL), `metrics.image` (PSNR-Y), `metrics.correlation` (SROCC, KROCC, PLCC after the
4-parameter logistic, rank accuracy: for quality scores).
"""

from vq.eval.base import Evaluator, QuietUi, Report, Table, Ui
from vq.tasks import EVALUATORS

__all__ = ["EVALUATORS", "Evaluator", "QuietUi", "Report", "Table", "Ui"]
