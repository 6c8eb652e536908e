"""Training: planning a run, running it (train, evaluate, record), the training
loop, checkpoints, weights, freeze presets, map export and pretraining."""
