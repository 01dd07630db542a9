"""Additive secret sharing over the ring Z_2^64 with fixed-point numbers, and the runtime.

Fixed point: a real x is encoded as round(x * 2^f) in two's complement in a numpy uint64,
whose arithmetic wraps mod 2^64, so ring operations are plain numpy operations. Encoding
error is at most 2^-(f+1).

Sharing: a ring array v is split into n additive shares that sum to v; any n-1 of them are
independent and uniformly random, so they reveal nothing about v. All n shares are stored as
one array of shape (n, *shape) so that every local step is a single vectorised operation
across parties (``shares[p]`` is what party p holds).

Runtime (:class:`Dealer`): the parties run in one process. A trusted dealer hands out
correlated randomness (the usual offline phase: Beaver triples, truncation pairs, bit
triples, shared random words); online, the parties only ever open values masked by that
randomness, except for the outputs opened on purpose with :meth:`Dealer.open`, whose names are
logged in ``opened``. Each opening is one communication round in which every party sends its
share to every other party; ``rounds`` and ``bytes_sent`` count that online traffic (the
offline dealer traffic and the input distribution are not counted).

The dealer's generator is seeded, so that a run repeats exactly (a truncation's rounding
depends on the dealer's mask): whoever knows the seed knows every mask, and so the secrets
behind the opened values. That is what a one-process simulation gives; a deployment runs the
dealer on its own machine with fresh secret randomness.

Fixed-point products carry 2f fractional bits and are truncated with a dealer pair
(r, r >> f): open c = z + r (uniform, so it hides z) and take (c >> f) - (r >> f). The result
is z / 2^f rounded down or up (error at most 1 unit in the last place, 2^-f), except when
c wraps mod 2^64, which happens with probability |z| / 2^64 per element, where z is the
product scaled by 2^2f; e.g. below 2^-24 for |value| < 2^8 at f = 16. Multiplications by a
0/1 share or an integer share need no truncation.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from Crypto.Cipher import AES

_T = TypeVar("_T")

U64 = np.uint64
DEFAULT_FRAC_BITS = 16
WORD_BYTES = 8


# Adding 1.5 * 2^52 to a double of magnitude < 2^51 leaves round(x) (ties to even, as np.rint)
# in the low mantissa bits: ten times faster than np.rint(x).astype(np.int64).
_ROUNDING_MAGIC = 1.5 * 2.0**52
_ROUNDING_MAGIC_BITS = np.array(_ROUNDING_MAGIC).view(np.int64)
MAX_ENCODED = 2.0**51


def encode(x: np.ndarray | float, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """Fixed-point encoding of reals into the ring (uint64, two's complement)."""
    scaled = np.asarray(np.multiply(x, float(1 << frac_bits), dtype=np.float64))
    fits = scaled.size == 0 or (scaled.max() < MAX_ENCODED and scaled.min() > -MAX_ENCODED)
    if not fits:  # NaN compares False, so it is refused too
        raise OverflowError(
            f"values must be finite and below 2^{51 - frac_bits} in magnitude "
            f"to be encoded with {frac_bits} fractional bits"
        )
    scaled += _ROUNDING_MAGIC
    out = scaled.view(np.int64)
    out -= _ROUNDING_MAGIC_BITS
    return out.view(U64)


def decode(v: np.ndarray, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """Inverse of :func:`encode` (ring elements read as signed numbers)."""
    return np.asarray(v, dtype=U64).view(np.int64) / float(1 << frac_bits)


def ring_int(k: np.ndarray | int) -> np.ndarray:
    """Signed integers as ring elements (e.g. labels, -1, public coefficients)."""
    return np.asarray(k, dtype=np.int64).view(U64)


def _as_ring(c: np.ndarray | int) -> np.ndarray:
    c = np.asarray(c)
    return c if c.dtype == U64 else ring_int(c)


def random_ring(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Uniform ring elements: the raw 64-bit output of the generator (faster than integers())."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return rng.bit_generator.random_raw(math.prod(shape)).reshape(shape)


def prg_words(
    key: bytes, shape: int | tuple[int, ...] = (), out: np.ndarray | None = None
) -> np.ndarray:
    """Cryptographically pseudo-random ring elements: the AES-CTR keystream under ``key``
    (16 or 32 bytes), written into ``out`` if given (a contiguous uint64 array).

    Lets a party receive a short key instead of a whole random share.
    """
    out = np.empty(shape, dtype=U64) if out is None else out
    AES.new(key, AES.MODE_CTR, nonce=b"").encrypt(
        _zeros(out.nbytes), output=memoryview(out).cast("B")
    )
    if sys.byteorder == "big":  # parties on any platform must expand a key to the same words
        out.byteswap(inplace=True)
    return out


_zero_buffer = bytes(1 << 20)


def _zeros(nbytes: int) -> memoryview:
    """A read-only all-zero plaintext for the keystream, reused to save a memset per call."""
    global _zero_buffer
    if len(_zero_buffer) < nbytes:
        _zero_buffer = bytes(nbytes)
    return memoryview(_zero_buffer)[:nbytes]


class Shared:
    """Additive shares of one ring array; ``shares[p]`` is party p's share.

    Every operator here is local (no communication): linear maps on shares are linear maps on
    the secret. Public constants are added by party 0 only.
    """

    __slots__ = ("shares",)

    def __init__(self, shares: np.ndarray | Sequence[np.ndarray]) -> None:
        self.shares = np.asarray(shares, dtype=U64)

    @property
    def n(self) -> int:
        return self.shares.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shares.shape[1:]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __add__(self, other: Shared) -> Shared:
        return Shared(self.shares + other.shares)

    def __sub__(self, other: Shared) -> Shared:
        return Shared(self.shares - other.shares)

    def __neg__(self) -> Shared:
        return Shared(-self.shares)

    def add_public(self, c: np.ndarray | int) -> Shared:
        """Plus a public ring array, or a signed integer array (added by party 0 only)."""
        out = self.shares.copy()
        out[0] += _as_ring(c)
        return Shared(out)

    def mul_public(self, k: np.ndarray | int) -> Shared:
        """Times a public integer (ring) array; no truncation, so use it for integer factors."""
        return Shared(self.shares * _as_ring(k))

    def sum(self, axis: int | None = None) -> Shared:
        if axis is None:
            return Shared(self.shares.reshape(self.n, -1).sum(axis=1, dtype=U64))
        return Shared(self.shares.sum(axis=axis + 1 if axis >= 0 else axis, dtype=U64))

    def reshape(self, *shape: int) -> Shared:
        return Shared(self.shares.reshape(self.n, *shape))

    def __getitem__(self, key) -> Shared:
        key = key if isinstance(key, tuple) else (key,)
        return Shared(self.shares[(slice(None), *key)])

    @staticmethod
    def concat(parts: Sequence[Shared]) -> Shared:
        """Flatten and concatenate, to run many independent operations in one round."""
        return Shared(np.concatenate([p.shares.reshape(p.n, -1) for p in parts], axis=1))

    def split(self, like: Sequence[Shared]) -> list[Shared]:
        """Inverse of :meth:`concat` for parts shaped like ``like``."""
        out, pos = [], 0
        for p in like:
            out.append(Shared(self.shares[:, pos : pos + p.size].reshape(self.n, *p.shape)))
            pos += p.size
        return out


def share(v: np.ndarray, n: int, rng: np.random.Generator) -> Shared:
    """Split ring array ``v`` into n additive shares (n-1 uniform, the last one fixed by v)."""
    v = np.asarray(v, dtype=U64)
    shares = np.empty((n, *v.shape), dtype=U64)
    shares[:-1] = random_ring(rng, (n - 1, *v.shape))
    shares[-1] = v - shares[:-1].sum(axis=0, dtype=U64)
    return Shared(shares)


def share_with_keys(v: np.ndarray, keys: Sequence[bytes], out: np.ndarray | None = None) -> Shared:
    """Pseudorandom sharing among len(keys) + 1 parties: party p < n-1 gets only ``keys[p]``
    and expands its share with :func:`prg_words`; the last party gets v minus those shares.
    ``out`` (shape (n, *v.shape)) lets a caller reuse one buffer for many vectors."""
    v = np.asarray(v, dtype=U64)
    shares = np.empty((len(keys) + 1, *v.shape), dtype=U64) if out is None else out
    for p, key in enumerate(keys):
        prg_words(key, out=shares[p])
    np.subtract(v, shares[:-1].sum(axis=0, dtype=U64), out=shares[-1])
    return Shared(shares)


def reconstruct(x: Shared) -> np.ndarray:
    return x.shares.sum(axis=0, dtype=U64)


def xor_share(v: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (XOR) sharing of 64-bit words: shape (n, *v.shape)."""
    shares = np.empty((n, *np.shape(v)), dtype=U64)
    shares[:-1] = random_ring(rng, (n - 1, *np.shape(v)))
    shares[-1] = np.bitwise_xor.reduce(shares[:-1], axis=0) ^ np.asarray(v, dtype=U64)
    return shares


def xor_reconstruct(shares: np.ndarray) -> np.ndarray:
    return np.bitwise_xor.reduce(shares, axis=0)


def bit_transpose(words: np.ndarray) -> np.ndarray:
    """Transpose 64 x 64 bit matrices: ``words`` (..., 64) -> (..., 64), where bit t of
    out[..., j] is bit j of words[..., t].

    Six swap stages on whole arrays (blocks of 32, 16, ..., 1 bits), no per-bit loop. The map
    is its own inverse and linear over XOR, so it applies to XOR shares one share at a time.
    """
    a = np.array(words, dtype=U64)
    half, mask = 32, 0x00000000FFFFFFFF
    while half:
        pairs = a.reshape(*a.shape[:-1], 64 // (2 * half), 2, half)
        lo, hi = pairs[..., 0, :], pairs[..., 1, :]
        t = ((lo >> U64(half)) ^ hi) & U64(mask)
        hi ^= t
        lo ^= t << U64(half)
        half //= 2
        mask ^= mask << half
    return a


def packed_words(size: int) -> int:
    """Words that hold ``size`` bits, 64 to a word."""
    return -(-size // 64)


def bit_slice(v: np.ndarray) -> np.ndarray:
    """Words (..., N) -> bit planes (..., W, 64) with W = ceil(N / 64): bit t of
    out[..., w, j] is bit j of v[..., 64w + t] (zero padding past N). Bit j of 64 elements
    then sits in one word, so one word operation works on bit j of all 64 at once."""
    v = np.asarray(v, dtype=U64)
    size = v.shape[-1]
    padded = np.zeros((*v.shape[:-1], packed_words(size) * 64), dtype=U64)
    padded[..., :size] = v
    return bit_transpose(padded.reshape(*v.shape[:-1], -1, 64))


def bit_unslice(planes: np.ndarray, size: int) -> np.ndarray:
    """Inverse of :func:`bit_slice`: (..., W, 64) -> (..., size)."""
    return bit_transpose(planes).reshape(*planes.shape[:-2], -1)[..., :size]


def unpack_bits(words: np.ndarray, size: int) -> np.ndarray:
    """Words (..., W) -> their bits (..., size) as 0/1 ring elements: bit t of word w is
    element 64w + t (the layout of one bit plane of :func:`bit_slice`)."""
    octets = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(octets, axis=-1, bitorder="little")[..., :size].astype(U64)


def _offline(method: Callable[..., _T]) -> Callable[..., _T]:
    """Time spent producing correlated randomness, which a deployment does ahead of time."""

    @functools.wraps(method)
    def timed(self: Dealer, *args, **kwargs) -> _T:
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.offline_seconds += time.perf_counter() - t0

    return timed


class Dealer:
    """The n parties' runtime: trusted dealer of correlated randomness plus the online steps
    that need communication (openings of masked values, multiplication, truncation).

    The dealer never sees the parties' inputs. ``opened`` lists the names of outputs opened on
    purpose; ``rounds`` and ``bytes_sent`` measure online communication; ``offline_seconds``
    is the part of the run time spent generating the dealer's randomness.
    """

    def __init__(
        self, n: int, rng: np.random.Generator, frac_bits: int = DEFAULT_FRAC_BITS
    ) -> None:
        if n < 2:
            raise ValueError("secret sharing needs at least 2 parties")
        self.n, self.rng, self.frac_bits = n, rng, frac_bits
        self.opened: list[str] = []
        self.rounds = 0
        self.bytes_sent = 0
        self.offline_seconds = 0.0

    # -- sharing and opening --------------------------------------------------------------
    def share(self, v: np.ndarray) -> Shared:
        """Secret-share an input (done by its owner, who then sends party p its share)."""
        return share(v, self.n, self.rng)

    def _count_round(self, words: int) -> None:
        self.rounds += 1
        self.bytes_sent += self.n * (self.n - 1) * words * WORD_BYTES

    def exchange(self, *xs: Shared, xor: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
        """Open masked (uniformly random) values, all in one round: additive shares ``xs``,
        then XOR-shared words ``xor`` (each (n, ...)); the opened values in that order."""
        self._count_round(sum(x.size for x in xs) + sum(math.prod(w.shape[1:]) for w in xor))
        return [reconstruct(x) for x in xs] + [xor_reconstruct(w) for w in xor]

    def exchange_xor(self, *xs: np.ndarray) -> list[np.ndarray]:
        """Open masked XOR-shared words, all in one round."""
        return self.exchange(xor=xs)

    def open(self, x: Shared, what: str) -> np.ndarray:
        """Deliberately reveal an output; ``what`` is logged in :attr:`opened`."""
        self.opened.append(what)
        return self.exchange(x)[0]

    def open_many(self, outputs: dict[str, Shared]) -> dict[str, np.ndarray]:
        """Reveal several outputs in one round."""
        self.opened.extend(outputs)
        return dict(zip(outputs, self.exchange(*outputs.values()), strict=True))

    # -- correlated randomness (offline phase) --------------------------------------------
    def random_words(self, shape: tuple[int, ...]) -> np.ndarray:
        return random_ring(self.rng, shape)

    @_offline
    def triple(
        self,
        x_shape: tuple[int, ...],
        y_shape: tuple[int, ...],
        op: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> tuple[Shared, Shared, Shared]:
        """Beaver triple: shares of random a, b and of op(a, b) (element-wise or matrix product)."""
        a, b = self.random_words(x_shape), self.random_words(y_shape)
        return self.share(a), self.share(b), self.share(op(a, b))

    @_offline
    def trunc_pair(self, shape: tuple[int, ...], bits: int) -> tuple[Shared, Shared]:
        r = self.random_words(shape)
        return self.share(r), self.share(r >> U64(bits))

    @_offline
    def bit_triple(
        self, shape: tuple[int, ...], channels: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """XOR shares of a random word a (n, *shape), of ``channels`` random words b_j
        (n, channels, *shape) and of c_j = a & b_j: Beaver triples for ANDs that share an operand."""
        A = self.random_words((self.n, *shape))
        B = self.random_words((self.n, channels, *shape))
        c = xor_reconstruct(A)[None] & xor_reconstruct(B)
        return A, B, xor_share(c, self.n, self.rng)

    def edabit(self, size: int) -> tuple[Shared, np.ndarray]:  # timed as offline by trunc_edabit
        """``size`` random words r, shared additively (n, size) and as XOR shares of their
        bit planes (n, W, 64) (see :func:`bit_slice`; the padding words are random too)."""
        r_add, _, planes = self.trunc_edabit(size, None)
        return r_add, planes

    @_offline
    def trunc_edabit(self, size: int, bits: int | None) -> tuple[Shared, Shared | None, np.ndarray]:
        """An :meth:`edabit` that is also a truncation pair: with it, additive shares of
        r >> bits (none when ``bits`` is None)."""
        planes = self.random_words((self.n, packed_words(size), 64))
        r = bit_unslice(xor_reconstruct(planes), size)
        return self.share(r), None if bits is None else self.share(r >> U64(bits)), planes

    @_offline
    def dabit(self, size: int) -> tuple[Shared, np.ndarray]:
        """``size`` random bits, shared additively (n, size) and as XOR shares of the words
        that hold them 64 to a word (n, W), laid out as :func:`unpack_bits` reads them."""
        words = self.random_words((self.n, packed_words(size)))
        return self.share(unpack_bits(xor_reconstruct(words), size)), words

    @_offline
    def dabit_product(self, size: int) -> tuple[Shared, np.ndarray, Shared, Shared]:
        """A :meth:`dabit` s with a random word a and the product a * s, all shared additively:
        what multiplying a shared value by a bit takes when the bit's mask is s."""
        s_add, s_words = self.dabit(size)
        a = self.random_words((size,))
        return s_add, s_words, self.share(a), self.share(a * reconstruct(s_add))

    # -- online arithmetic ------------------------------------------------------------------
    def mul_many(self, pairs: Sequence[tuple[Shared, Shared]]) -> list[Shared]:
        """Element-wise products x * y with Beaver triples, every pair in the same round.

        Open e = x - a and d = y - b (uniform); then xy = c + e*b + d*a + e*d.
        """
        if any(x.shape != y.shape for x, y in pairs):
            raise ValueError("element-wise product of shares of different shapes")
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        x, y = Shared.concat(xs), Shared.concat(ys)
        A, B, C = self.triple(x.shape, y.shape, np.multiply)
        e, d = self.exchange(x - A, y - B)
        z = Shared(C.shares + e * B.shares + d * A.shares).add_public(e * d)
        return z.split(xs)

    def mul(self, x: Shared, y: Shared) -> Shared:
        return self.mul_many([(x, y)])[0]

    def matmul(self, x: Shared, y: Shared) -> Shared:
        """Matrix product (m, k) @ (k, n), or a stack of them (K, m, k) @ (K, k, n), with a
        matrix Beaver triple (A, B, C = A @ B), one round. np.dot for one product: its integer
        loop is up to a third faster than np.matmul's."""
        xs, ys = x.shape, y.shape
        if len(xs) not in (2, 3) or len(ys) != len(xs) or xs[:-2] != ys[:-2] or xs[-1] != ys[-2]:
            raise ValueError(f"cannot multiply matrices shaped {xs} and {ys}")
        A, B, C = self.triple(xs, ys, np.dot if len(xs) == 2 else np.matmul)
        e, d = self.exchange(x - A, y - B)
        B.shares[0] += d  # party 0 also adds e @ d: e @ (B_0 + d) saves one product
        if len(xs) == 2:
            eB = np.dot(e, B.shares).transpose(1, 0, 2)  # (m, parties, n) -> (parties, m, n)
            return Shared(C.shares + eB + np.dot(A.shares, d))
        return Shared(C.shares + np.matmul(e, B.shares) + np.matmul(A.shares, d))

    def truncate(self, z: Shared, bits: int | None = None) -> Shared:
        """Divide by 2^bits (default f) with a dealer pair (r, r >> bits); see module doc."""
        bits = self.frac_bits if bits is None else bits
        R, R_shift = self.trunc_pair(z.shape, bits)
        (c,) = self.exchange(z + R)
        return (-R_shift).add_public(c >> U64(bits))
