"""Secure multi-party computation for FedHealth.

* ``ring``: fixed-point additive sharing on Z_2^64, Beaver multiplication, truncation, and
  the runtime (dealer of correlated randomness, communication accounting);
* ``compare``: sign bit, ReLU and argmax on shares (dealer-assisted A2B + a bit-sliced comparison tree);
* ``inference``: :func:`encrypted_evaluate_many`, the verifier's encrypted model scoring;
* ``aggregate``: :func:`secure_weighted_sum` of secret-shared updates;
* ``bonawitz``: :class:`MaskedAggregation`, pairwise masking that survives drop-outs;
* ``shamir``: Shamir sharing and Feldman VSS.
"""

from .aggregate import secure_weighted_sum
from .bonawitz import MaskedAggregation
from .inference import EvalResult, encrypted_evaluate, encrypted_evaluate_many
from .shamir import FeldmanSharing, ShareError, feldman_reconstruct, feldman_split, feldman_verify

__all__ = [
    "EvalResult",
    "FeldmanSharing",
    "MaskedAggregation",
    "ShareError",
    "encrypted_evaluate",
    "encrypted_evaluate_many",
    "feldman_reconstruct",
    "feldman_split",
    "feldman_verify",
    "secure_weighted_sum",
]
