"""The rows a flag can name, one table each: activations.py (the built-in activations and
your own), optimizers.py, augment.py (the --augment choices) and schedules.py (learning-rate
schedules, the batch ramp). config.py, the command line, checkpoints and the loop's settings
follow from the rows."""
