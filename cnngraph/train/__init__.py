"""Training: optimisers (and, with the runner, schedules, data, metrics, checkpoints)."""
