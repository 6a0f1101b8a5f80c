"""A toy model task, kept in the tests: what a new task adds, and nothing else.

Its own folder (this package stands in for ``train/<task>/``: config, model family, task,
stage, evaluator) plus one `TaskDef` registered by the test. It takes a 5-D clip batch
(``B,T,H,W,3``) and a per-clip scalar (``B``), so it also exercises multi-input stages.
"""
