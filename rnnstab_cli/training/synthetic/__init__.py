"""The paper's synthetic (pathological) tasks (§4.1, Fig. 7 and the appendix): runs trained
update by update on freshly generated batches until the task is solved or the budget is spent.
:mod:`.loop` runs one (:func:`~.loop.run_training`), :mod:`.batches` prepares its data chunk by
chunk in the background, :mod:`.evaluate` measures the test error and decides success, and
:mod:`.diagnostics` records the gradient flow at each evaluation. Their settings
(:class:`~rnnstab_cli.training.config.TrainConfig`), checkpoints, records and progress display
are shared with the natural tasks and live one level up, in :mod:`rnnstab_cli.training`.
"""
