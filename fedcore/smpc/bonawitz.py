"""Secure aggregation by pairwise masking that survives drop-outs (Bonawitz et al., CCS 2017).

Per round, each client i has two fresh key pairs (one to agree on masks, one to encrypt
shares) and a self-mask seed b_i. The rounds of the protocol, simulated in one process:

1. AdvertiseKeys: clients publish their public keys (the server relays them).
2. ShareKeys: client i Shamir-shares (threshold t) its mask private key and b_i among all
   clients; each share travels in an ECDH + AES-GCM envelope (:func:`fedcore.signing.seal_for`)
   that only its recipient can open, relayed by the server.
3. MaskedInput: y_i = x_i + PRG(b_i) + sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij), where
   s_ij = ECDH(i, j) is known to i and j only; the pair masks cancel in the sum.
4. Unmasking: the server names who sent y (survivors) and who did not (dropped). Each
   responding client returns its share of b_j for every survivor and of the mask key of
   every dropped client, never both for the same client (that would unmask its input). From
   t shares the server removes the self-masks and re-derives the dropped clients' pair masks.

The server learns only the sum of the survivors' inputs, as long as at least t clients
respond. The threshold must exceed n/2 (both the server and every client check it): with
t <= n/2 a server that tells two disjoint groups of t clients different stories about one
client (survivor to one group, dropped to the other) collects both its self-mask seed and its
mask key, and unmasks its input. For the same reason a client never reveals its own mask key.
PRG = AES-256-CTR (cryptographically secure); inputs are fixed point in Z_2^64.
Cost: O(n^2) key agreements and mask expansions per round, so it suits tens of clients.
The semi-honest variant: key advertisements are not signed here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np

from ..signing import Identity, open_from, seal_for
from .ring import DEFAULT_FRAC_BITS, U64, decode, encode, prg_words
from .shamir import Share, rand_below, reconstruct_secret, split_secret

SEED_BITS = 256


def _seed_key(seed: int) -> bytes:
    return seed.to_bytes(SEED_BITS // 8, "big")


class BonawitzClient:
    """One hospital's side of the protocol for one round."""

    def __init__(self, index: int, context: bytes, rng: np.random.Generator | None = None) -> None:
        self.index, self.context = index, context
        # Round keys are fresh, never the hospital's long-term signing identity: the server
        # may legitimately rebuild a dropped client's mask key.
        if rng is None:
            self.mask_key, self.enc_key = Identity.generate(), Identity.generate()
        else:
            self.mask_key, self.enc_key = (
                Identity.from_seed(rng.bytes(32)),
                Identity.from_seed(rng.bytes(32)),
            )
        self.self_seed = rand_below(rng, 2**SEED_BITS)
        self.directory: dict[int, tuple[str, str]] = {}
        self.held: dict[int, tuple[Share, Share]] = {}  # from client j: shares of (mask key, b_j)
        self.revealed: dict[int, str] = {}  # j -> "mask_key" | "self_seed", what we gave away

    def public_keys(self) -> tuple[str, str]:
        """AdvertiseKeys: (mask public key, encryption public key)."""
        return self.mask_key.public_pem, self.enc_key.public_pem

    def _ad(self, sender: int, recipient: int) -> bytes:
        return b"bonawitz|%s|%d->%d" % (self.context, sender, recipient)

    def share_keys(
        self,
        directory: Mapping[int, tuple[str, str]],
        threshold: int,
        rng: np.random.Generator | None = None,
    ) -> dict[int, bytes]:
        """ShareKeys: one sealed envelope per client with its shares of our secrets."""
        self.directory = dict(directory)
        ids = sorted(self.directory)
        _check_threshold(len(ids), threshold)
        key_shares = split_secret(self.mask_key.scalar, len(ids), threshold, rng)
        seed_shares = split_secret(self.self_seed, len(ids), threshold, rng)
        out = {}
        for j, ks, ss in zip(ids, key_shares, seed_shares, strict=True):
            body = json.dumps({"x": ks[0], "key": ks[1], "seed": ss[1]}).encode()
            out[j] = seal_for(self.directory[j][1], self.enc_key, body, self._ad(self.index, j))
        return out

    def receive_shares(self, envelopes: Mapping[int, bytes]) -> None:
        """Open the envelopes relayed by the server (raises if one was tampered with)."""
        for j, env in envelopes.items():
            body = json.loads(
                open_from(self.directory[j][1], self.enc_key, env, self._ad(j, self.index))
            )
            self.held[j] = ((body["x"], body["key"]), (body["x"], body["seed"]))

    def masked_input(self, x: np.ndarray) -> np.ndarray:
        """MaskedInput: the fixed-point ring vector x plus the self-mask and the pair masks."""
        y = np.asarray(x, dtype=U64) + prg_words(_seed_key(self.self_seed), np.size(x)).reshape(
            np.shape(x)
        )
        for j, (mask_pem, _) in self.directory.items():
            if j != self.index:
                pair = pair_mask(self.mask_key, mask_pem, self.index, j, self.context, np.size(x))
                y = (
                    y + pair.reshape(np.shape(x))
                    if self.index < j
                    else y - pair.reshape(np.shape(x))
                )
        return y

    def unmask(
        self, survivors: Iterable[int], dropped: Iterable[int]
    ) -> dict[int, tuple[str, Share]]:
        """Unmasking: shares of b_j for survivors, of mask keys for the dropped. Refuses to
        give both kinds for one client, across calls, so no input can ever be unmasked."""
        survivors, dropped = set(survivors), set(dropped)
        if survivors & dropped:
            raise ValueError(
                f"clients {sorted(survivors & dropped)} cannot be both survivors and dropped"
            )
        if self.index in dropped:
            raise ValueError(
                f"client {self.index} refuses: it is online, so it cannot have dropped out"
            )
        want = {j: "self_seed" for j in survivors} | {j: "mask_key" for j in dropped}
        clash = sorted(j for j, kind in want.items() if self.revealed.get(j, kind) != kind)
        if clash:
            raise ValueError(
                f"client {self.index} refuses: it already revealed the other secret of {clash}"
            )
        self.revealed.update(want)
        return {j: (kind, self.held[j][0 if kind == "mask_key" else 1]) for j, kind in want.items()}


def _check_threshold(n: int, threshold: int) -> None:
    """Only a threshold above n/2 keeps two disjoint groups of clients from each giving the
    server a different secret of the same client (see the module doc)."""
    low = max(2, n // 2 + 1)
    if not low <= threshold <= n:
        raise ValueError(
            f"the threshold must be at least 2, above half the clients and at most all of "
            f"them ({low}..{n} for {n} clients), got {threshold}"
        )


def pair_mask(
    key: Identity, peer_mask_pem: str, i: int, j: int, context: bytes, size: int
) -> np.ndarray:
    """PRG(s_ij) with s_ij = ECDH(i, j), the same from either side."""
    lo, hi = sorted((i, j))
    return prg_words(key.agree(peer_mask_pem, b"bonawitz-pair|%s|%d|%d" % (context, lo, hi)), size)


class MaskedAggregation:
    """The server of one round with ``n`` clients and Shamir threshold ``t``.

    Setup runs AdvertiseKeys and ShareKeys; then each client calls :meth:`masked_input` and the
    server calls :meth:`aggregate` with whatever arrived. ``seed`` makes the simulation
    reproducible; ``seed=None`` draws every key and seed from the OS.
    """

    def __init__(
        self,
        n: int,
        threshold: int,
        *,
        seed: int | None = 0,
        frac_bits: int = DEFAULT_FRAC_BITS,
        context: bytes = b"round",
    ) -> None:
        _check_threshold(n, threshold)
        self.n, self.t, self.frac_bits = n, threshold, frac_bits
        rng = None if seed is None else np.random.default_rng(seed)
        self.clients = [BonawitzClient(i, context, rng) for i in range(n)]
        self.directory = {c.index: c.public_keys() for c in self.clients}
        self.context = context
        outboxes = {c.index: c.share_keys(self.directory, threshold, rng) for c in self.clients}
        for c in self.clients:  # the server relays envelopes it cannot read
            c.receive_shares({sender: box[c.index] for sender, box in outboxes.items()})

    def masked_input(self, i: int, vector: np.ndarray) -> np.ndarray:
        """Client i's message: its (float) vector, encoded and masked."""
        return self.clients[i].masked_input(encode(vector, self.frac_bits))

    def aggregate(
        self, masked: Mapping[int, np.ndarray], responders: Iterable[int] | None = None
    ) -> np.ndarray:
        """Sum of the survivors' vectors. ``masked`` holds what arrived; ``responders`` (default:
        every survivor) are the clients still online for unmasking, at least t of them."""
        survivors = sorted(masked)
        dropped = sorted(set(range(self.n)) - set(survivors))
        responders = survivors if responders is None else sorted(set(responders) & set(survivors))
        if len(responders) < self.t:
            raise ValueError(
                f"only {len(responders)} clients can help unmask; {self.t} are needed to recover"
            )
        answers = [self.clients[r].unmask(survivors, dropped) for r in responders[: self.t]]

        def secret_of(j: int) -> int:
            return reconstruct_secret([a[j][1] for a in answers])

        total = np.zeros(np.shape(next(iter(masked.values()))), dtype=U64)
        for y in masked.values():
            total += np.asarray(y, dtype=U64)
        for j in survivors:
            total -= prg_words(_seed_key(secret_of(j)), total.size).reshape(total.shape)
        for d in dropped:
            key = Identity.from_scalar(secret_of(d))
            for s in survivors:  # s added +PRG(s_sd) if s < d, else -PRG(s_sd): cancel it
                mask = pair_mask(key, self.directory[s][0], d, s, self.context, total.size).reshape(
                    total.shape
                )
                total = total - mask if s < d else total + mask
        return decode(total, self.frac_bits)
