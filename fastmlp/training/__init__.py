"""Training, where the config stops: run_data.py (the data a run takes), plan.py (a config turned
into the loop's settings, its network, buffers and sparse-or-dense first layer), run.py
(``train()``: epochs, interrupts, the summary), checkpoint.py and outputs.py (the files a run
writes)."""
