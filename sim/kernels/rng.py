"""Random streams as rows of an int64 array: xoshiro128** drawn by inlinable kernels.

Why our own generator
    numba supports ``numpy.random.Generator`` arguments, but every call of a compiled function
    that takes one rebuilds the generator's bit-generator interface (about 7 µs per generator,
    measured): the pipeline kernel took four, 28 µs of a 40 µs empty tick. A numba ``Generator``
    method also needs numba's runtime, so it cannot be drawn from a ``hot`` helper (no reference
    counting, inlined into the per-attempt loop). Here a stream's whole state is one row of a
    2-D ``int64`` array ``states`` of shape ``(n_streams, 4)``: passing it to a kernel costs what
    passing any array costs, and the draws below are ``hot`` functions that LLVM inlines.

Why xoshiro128** (Blackman & Vigna, version 1.1 of ``xoshiro128starstar.c``)
    It is small (4 words of 32 bits, period 2^128 - 1), fast, and passes BigCrush and PractRand.
    Each 32-bit word is stored in an ``int64`` (values in [0, 2^32)) and every operation is
    followed by ``& 0xFFFFFFFF``, so that no intermediate leaves int64: ``x * 9 < 2^36``,
    ``x << 11 < 2^43`` and, in ``integers``, ``x * n < 2^63`` for ``n <= 2^31``. Two traps make
    this matter. numba types an operation mixing ``uint64`` and ``int64`` as ``float64``, which
    silently loses bits; and under ``NUMBA_DISABLE_JIT=1`` these functions run as Python on numpy
    scalars, where a ``uint64`` overflow raises a RuntimeWarning (an error in our tests). With
    int64 words the compiled and the interpreted kernels compute the same integers exactly.

Draws (``s`` the state array, ``i`` the stream's row, advanced in place)
    - ``next32(s, i)``: the generator's next output, an int in [0, 2^32);
    - ``uniform(s, i)``: a float in [0, 1) from two outputs ``a``, ``b``:
      ``((a >> 5) * 2^26 + (b >> 6)) / 2^53``, i.e. a multiple of 2^-53, each of the 2^53 values
      equally likely. The largest is ``1 - 2^-53``: it never returns 1.0;
    - ``standard_exponential(s, i)`` = ``-log1p(-uniform)``, and ``exponential(s, i, mean)`` =
      ``-mean * log1p(-uniform)``; finite, at most ``53 ln 2 * mean`` (about ``36.7 * mean``);
    - ``integers(s, i, n)``: an int uniform on [0, n) for ``1 <= n <= 2^31``, exactly unbiased
      (Lemire's multiply-shift on 32-bit outputs with rejection; one output per draw except with
      probability ``(2^32 mod n) / 2^32``, at most about 1/3). ``n`` must be a signed integer:
      a ``uint64`` would turn the product into a float in numba.

    The ``hot`` functions check nothing (they run per attempt); the caller guarantees a valid
    row (words in [0, 2^32), not all zero) and ``n``. ``draws`` is the checked wrapper.

Streams
    ``seeded(seed, names)`` makes one row per name from
    ``SeedSequence([seed, crc32(name)]).generate_state(4, uint32)``, the derivation of
    ``sim.streams``: a stream's numbers depend on the seed and its name only, not on the other
    names, their order, the worker or the launcher. SeedSequence hashes its input, so rows are
    unrelated starting points on the 2^128 - 1 cycle: for k streams of L draws each the chance of
    any overlap is about k^2 L / 2^128 (10 streams of 2^40 draws: 2^-81). The all-zero state (a
    fixed point of the generator) would come up with probability 2^-128; it is replaced by a
    fixed non-zero row.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from sim.kernels import hot

MASK32 = 0xFFFFFFFF
TWO32 = 4294967296  # 2^32
MAX_N = 2147483648  # 2^31, the largest bound of ``integers``
# the row that replaces an all-zero state (any non-zero row would do): the first 128 bits of the
# golden ratio's fraction, 0x9E3779B9_7F4A7C15_F39CC060_5CEDC834
_NONZERO = (0x9E3779B9, 0x7F4A7C15, 0xF39CC060, 0x5CEDC834)


@hot
def next32(s: np.ndarray, i: int) -> int:
    """The next output of stream ``i``, in [0, 2^32): ``rotl(s1 * 5, 7) * 9`` (mod 2^32)."""
    s0 = s[i, 0]
    s1 = s[i, 1]
    s2 = s[i, 2]
    s3 = s[i, 3]
    x = (s1 * 5) & MASK32
    x = ((x << 7) & MASK32) | (x >> 25)
    result = (x * 9) & MASK32
    t = (s1 << 9) & MASK32
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = ((s3 << 11) & MASK32) | (s3 >> 21)
    s[i, 0] = s0
    s[i, 1] = s1
    s[i, 2] = s2
    s[i, 3] = s3
    return result


@hot
def uniform(s: np.ndarray, i: int) -> float:
    """A float in [0, 1): 27 bits of one output and 26 of the next, over 2^53."""
    a = next32(s, i)
    b = next32(s, i)
    return ((a >> 5) * 67108864 + (b >> 6)) / 9007199254740992.0


@hot
def standard_exponential(s: np.ndarray, i: int) -> float:
    """An exponential variate of mean 1, by inversion: ``-log1p(-uniform)`` (finite)."""
    return -math.log1p(-uniform(s, i))


@hot
def exponential(s: np.ndarray, i: int, mean: float) -> float:
    """An exponential variate of mean ``mean``: ``-mean * log1p(-uniform)``."""
    return -mean * math.log1p(-uniform(s, i))


@hot
def integers(s: np.ndarray, i: int, n: int) -> int:
    """An int uniform on [0, n), ``1 <= n <= 2^31`` (Lemire's method, exactly unbiased).

    ``m = x * n`` maps a 32-bit output ``x`` to ``m >> 32``; each value is hit by
    ``floor(2^32 / n)`` or one more ``x``. Rejecting the ``x`` whose low word ``m & MASK32`` is
    below ``2^32 mod n`` leaves exactly ``floor(2^32 / n)`` for each; the remainder is computed
    only when the low word is below ``n`` (rare for small ``n``): a division only then.
    """
    m = next32(s, i) * n
    low = m & MASK32
    if low < n:
        t = (TWO32 - n) % n
        while low < t:
            m = next32(s, i) * n
            low = m & MASK32
    return m >> 32


# --------------------------------------------------------------------------- Python side


def _row(words: np.ndarray) -> np.ndarray:
    """Four 32-bit words as a state row; the all-zero state is replaced by ``_NONZERO``."""
    row = np.asarray(words, dtype=np.uint32).astype(np.int64)
    if row.shape != (4,):
        raise ValueError(f"a state row is 4 words, got shape {row.shape}")
    if not row.any():
        row = np.array(_NONZERO, dtype=np.int64)
    return row


def seeded(seed: int, names: tuple[str, ...]) -> np.ndarray:
    """The states of streams ``names`` for ``seed``: row ``k`` is stream ``names[k]``.

    Row ``k`` depends on ``seed`` and ``names[k]`` only (``SeedSequence([seed, crc32(name)])``, as
    in ``sim.streams``). Names must be distinct: two rows with one name would be one stream.
    """
    if len(set(names)) != len(names):
        raise ValueError(f"stream names must be distinct, got {names!r}")
    states = np.empty((len(names), 4), dtype=np.int64)
    for k, name in enumerate(names):
        seq = np.random.SeedSequence([seed, zlib.crc32(name.encode())])
        states[k] = _row(seq.generate_state(4, np.uint32))
    return states


@hot
def _fill_next32(s: np.ndarray, i: int, out: np.ndarray) -> None:
    for k in range(out.shape[0]):
        out[k] = next32(s, i)


@hot
def _fill_uniform(s: np.ndarray, i: int, out: np.ndarray) -> None:
    for k in range(out.shape[0]):
        out[k] = uniform(s, i)


@hot
def _fill_standard_exponential(s: np.ndarray, i: int, out: np.ndarray) -> None:
    for k in range(out.shape[0]):
        out[k] = standard_exponential(s, i)


@hot
def _fill_exponential(s: np.ndarray, i: int, out: np.ndarray, mean: float) -> None:
    for k in range(out.shape[0]):
        out[k] = exponential(s, i, mean)


@hot
def _fill_integers(s: np.ndarray, i: int, out: np.ndarray, n: int) -> None:
    for k in range(out.shape[0]):
        out[k] = integers(s, i, n)


KINDS = ("next32", "uniform", "standard_exponential", "exponential", "integers")


def draws(states: np.ndarray, i: int, kind: str, n: int, *args: Any) -> np.ndarray:
    """``n`` draws of ``kind`` from stream ``i`` of ``states`` (advanced in place), as an array.

    ``kind`` is one of ``KINDS``; ``exponential`` takes the mean, ``integers`` the bound (in
    [1, 2^31]). ``next32`` and ``integers`` give int64, the others float64. The same numbers, in
    the same order, as ``n`` calls of the function of that name.
    """
    if not (
        isinstance(states, np.ndarray)
        and states.dtype == np.int64
        and states.ndim == 2
        and states.shape[1] == 4
        and states.flags.c_contiguous
        and states.flags.writeable
    ):
        raise ValueError("states must be a writeable C-contiguous int64 array of shape (k, 4)")
    if not 0 <= i < states.shape[0]:
        raise ValueError(f"stream {i} out of range for {states.shape[0]} streams")
    row = states[i]
    if row.min() < 0 or row.max() > MASK32 or not row.any():
        raise ValueError(f"stream {i}: words must be in [0, 2^32) and not all zero, got {row}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    want_args = {"exponential": 1, "integers": 1}.get(kind, 0)
    if kind not in KINDS or len(args) != want_args:
        raise ValueError(
            f"kind must be one of {KINDS} (exponential: mean, integers: bound), "
            f"got {kind!r} with {len(args)} arguments"
        )
    out = np.empty(n, dtype=np.int64 if kind in ("next32", "integers") else np.float64)
    if kind == "next32":
        _fill_next32(states, i, out)
    elif kind == "uniform":
        _fill_uniform(states, i, out)
    elif kind == "standard_exponential":
        _fill_standard_exponential(states, i, out)
    elif kind == "exponential":
        mean = float(args[0])
        if not math.isfinite(mean):
            raise ValueError(f"exponential: mean must be finite, got {mean}")
        _fill_exponential(states, i, out, mean)
    else:
        bound = args[0]
        if not isinstance(bound, int | np.integer) or not 1 <= bound <= MAX_N:
            raise ValueError(f"integers: bound must be in [1, 2^31], got {bound}")
        _fill_integers(states, i, out, int(bound))
    return out
