"""Shamir secret sharing over a prime field, and Feldman verifiable secret sharing.

Shamir: a secret s becomes the points (i, f(i)), i = 1..n, of a random polynomial f of degree
t-1 with f(0) = s. Any t points give s by Lagrange interpolation at 0; t-1 points are
consistent with every possible secret, so they reveal nothing.

Feldman VSS: the dealer also publishes commitments C_j = g^a_j mod p to the coefficients a_j,
in the order-q subgroup of the RFC 3526 2048-bit MODP group (p = 2q + 1 a safe prime, g = 2,
which generates that subgroup because p = 7 mod 8), with secrets and shares in Z_q. A share
(i, s_i) is valid iff g^s_i == prod_j C_j^(i^j) mod p, so every shareholder can check its
share without learning the secret, and a tampered share or wrong commitment is caught and
attributed. Hiding rests on discrete logarithms in that group (C_0 = g^s is public).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Share = tuple[int, int]  # (party index i >= 1, f(i))

PRIME = 2**521 - 1  # Mersenne prime: default Shamir field, holds any secret below 2^521

MODP_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)  # RFC 3526 group 14
MODP_Q = (MODP_P - 1) // 2
MODP_G = 2


class ShareError(ValueError):
    """Bad shares or commitments; ``parties`` are the indices whose shares failed."""

    def __init__(self, message: str, parties: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.parties = tuple(parties)
        self.party = self.parties[0] if self.parties else None


def _whole(v) -> int | None:
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
        return None
    return int(v)


def as_share(share, position: int = 0) -> Share:
    """``share`` as a pair of Python ints (NumPy integers are accepted and converted); anything
    else (a float, a string, a pair that is not a pair) is a :class:`ShareError` naming the party
    by its index when it has one, else the share by its ``position`` (1-based) among the shares
    received, blaming no party (a position is not a party's index: that party may be honest)."""
    try:
        i, s = share
    except (TypeError, ValueError):
        raise ShareError(f"share {position} is not a pair (index, value)") from None
    index, value = _whole(i), _whole(s)
    if index is None:
        raise ShareError(f"share {position}'s index {i!r} is not a whole number")
    if value is None:
        raise ShareError(f"the share of party {index} holds {type(s).__name__} {s!r}, not a whole number", [index])
    return index, value


def rand_below(rng: np.random.Generator | None, bound: int) -> int:
    """Uniform integer in [0, bound): from ``rng`` for reproducible simulations, else from the
    OS's cryptographic source. 64 extra bits make the modulo bias negligible."""
    if rng is None:
        return secrets.randbelow(bound)
    return int.from_bytes(rng.bytes((bound.bit_length() + 7) // 8 + 8), "big") % bound


def _poly_eval(coeffs: Sequence[int], x: int, mod: int) -> int:
    y = 0
    for c in reversed(coeffs):
        y = (y * x + c) % mod
    return y


def _random_poly(secret: int, t: int, prime: int, rng: np.random.Generator | None) -> list[int]:
    if not 0 <= secret < prime:
        raise ValueError("the secret must lie in [0, prime)")
    return [secret] + [rand_below(rng, prime) for _ in range(t - 1)]


def _check_threshold(n: int, t: int, prime: int) -> None:
    if not 1 <= t <= n:
        raise ValueError(f"need 1 <= threshold <= parties, got threshold {t} of {n}")
    if n >= prime:
        raise ValueError("more parties than field elements")


def split_secret(
    secret: int, n: int, t: int, rng: np.random.Generator | None = None, prime: int = PRIME
) -> list[Share]:
    """n shares (i, f(i)), i = 1..n, any t of which rebuild ``secret``."""
    _check_threshold(n, t, prime)
    coeffs = _random_poly(secret, t, prime, rng)
    return [(i, _poly_eval(coeffs, i, prime)) for i in range(1, n + 1)]


def reconstruct_secret(shares: Sequence[Share], prime: int = PRIME) -> int:
    """Lagrange interpolation at 0. Given fewer than t shares the result is a wrong value,
    not an error: Shamir shares carry no record of the threshold."""
    shares = [as_share(sh, k) for k, sh in enumerate(shares, 1)]
    xs = [x for x, _ in shares]
    if not shares or len(set(xs)) != len(xs) or any(x % prime == 0 for x in xs):
        raise ShareError("need at least one share, with distinct non-zero indices")
    first: dict[int, int] = {}
    for x in xs:  # the field only sees indices modulo the prime: 1 and 1 + prime are one point
        if x % prime in first:
            raise ShareError(f"share indices {first[x % prime]} and {x} are the same point modulo the prime: "
                             "need distinct non-zero indices", [first[x % prime], x])
        first[x % prime] = x
    secret = 0
    for xj, yj in shares:
        num, den = 1, 1
        for xm in xs:
            if xm != xj:
                num = num * -xm % prime
                den = den * (xj - xm) % prime
        secret = (secret + yj * num * pow(den, -1, prime)) % prime
    return secret


@dataclass(frozen=True)
class FeldmanSharing:
    shares: list[Share]  # shares[k] goes to party k + 1
    commitments: list[int]  # C_j = g^a_j mod p, public


def feldman_split(
    secret: int, n: int, t: int, rng: np.random.Generator | None = None
) -> FeldmanSharing:
    """Shamir shares of ``secret`` (in Z_q) with Feldman commitments to the polynomial."""
    _check_threshold(n, t, MODP_Q)
    coeffs = _random_poly(secret, t, MODP_Q, rng)
    return FeldmanSharing(
        [(i, _poly_eval(coeffs, i, MODP_Q)) for i in range(1, n + 1)],
        [pow(MODP_G, a, MODP_P) for a in coeffs],
    )


def _commitment_problem(c) -> str | None:
    """Why ``c`` is not an element of the order-q subgroup, or None if it is."""
    if not isinstance(c, int) or isinstance(c, bool) or not 1 <= c < MODP_P:
        return "is not a number in 1..p-1"
    if pow(c, MODP_Q, MODP_P) != 1:
        return "lies outside the order-q subgroup"
    return None


def check_commitments(commitments: Sequence[int], threshold: int | None = None) -> None:
    """Raise :class:`ShareError` (the dealer's fault, no party named) unless there is one
    commitment per coefficient (``threshold`` of them, when known) and each lies in the
    order-q subgroup. A commitment off the subgroup (e.g. p - C_j) would make the correct
    shares of some parties fail and so blame them for the dealer's cheating."""
    if not commitments:
        raise ShareError("the dealer published no commitments")
    if threshold is not None and len(commitments) != threshold:
        raise ShareError(f"the dealer published {len(commitments)} commitments where the threshold is {threshold}")
    for j, c in enumerate(commitments):
        problem = _commitment_problem(c)
        if problem:
            raise ShareError(f"the dealer cheated: commitment {j} {problem}")


def feldman_verify(share: Share, commitments: Sequence[int]) -> bool:
    """What each shareholder checks on receipt: g^s_i == prod_j C_j^(i^j) mod p, with every
    C_j in the order-q subgroup."""
    return bool(commitments) and not any(_commitment_problem(c) for c in commitments) and _share_matches(
        share, commitments
    )


def _share_matches(share: Share, commitments: Sequence[int]) -> bool:
    try:
        i, s = as_share(share)
    except ShareError:
        return False
    if not (1 <= i < MODP_Q and 0 <= s < MODP_Q):
        return False
    expected = 1
    for j, c in enumerate(commitments):
        expected = expected * pow(c, pow(i, j, MODP_Q), MODP_P) % MODP_P
    return pow(MODP_G, s, MODP_P) == expected


def feldman_reconstruct(
    shares: Sequence[Share], commitments: Sequence[int], *, threshold: int | None = None
) -> int:
    """The secret from at least t shares, each checked against the commitments first.

    The commitments themselves are checked first (see :func:`check_commitments`; pass the
    agreed ``threshold`` to check their count too): a bad one is the dealer's fault.
    Raises :class:`ShareError` naming every party whose share fails. When all of them fail,
    the commitments are the likelier culprit (the dealer), and the message says so.
    """
    check_commitments(commitments, threshold)
    shares = [as_share(sh, k) for k, sh in enumerate(shares, 1)]
    if len(shares) < len(commitments):
        raise ShareError(f"need {len(commitments)} shares (the threshold), got {len(shares)}")
    bad = [i for i, s in shares if not _share_matches((i, s), commitments)]
    if bad:
        names = ", ".join(f"party {i}" for i in bad)
        if len(bad) == len(shares):
            raise ShareError(
                f"no share matches the dealer's commitments ({names}): the commitments "
                "are wrong, so the dealer cheated, or every share was tampered with",
                bad,
            )
        raise ShareError(f"share of {names} does not match the dealer's commitments", bad)
    return reconstruct_secret(shares, MODP_Q)
