"""A user-written ReLU for test_train.py, in a file of its own: a user activation's compiled
pair is cached under a digest of the file its functions live in, so keeping them out of
test_train.py spares compiling it again (~1 s) after every edit to that file."""


def my_relu(x):
    return x if x > 0.0 else 0.0


def my_relu_derivative(x):
    return 1.0 if x > 0.0 else 0.0
