"""numba kernels: the per-request work of spacesim, in batches.

Every kernel is a private ``@njit(cache=True)`` function that takes arrays and scalars with explicit
dtypes; a public wrapper validates its input and allocates its output. Kernels import nothing of the
project (numpy and numba only), so the engine, the validation command and the tests share them.
"""
