"""One federated round as a pipeline, split so that each hospital can be its own Celery task.

1. ``hospital_update``: a hospital trains from the global model on its own rows (a malicious
   one applies its attack), signs the update bound to (experiment, round, hospital).
2. ``finish_round``: colluding attacks, signature checks, scores per update, the defense
   (verification on the validation set — under SMPC when ``encrypted`` — or a robust
   aggregator), aggregation of the accepted updates (secret-shared when ``encrypted``), the new
   global model; every step goes to the ledger ``sink(kind, payload)``.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from . import attacks as atk
from .aggregation import AGGREGATORS, fedavg
from .data import Standardizer, Table, holdout_split, partition
from .local import train_centralised, train_local
from .model import ModelSpec, evaluate, flatten, init_weights, predict, unflatten
from .signing import Identity, verify_signature
from .smpc.aggregate import MAX_UPDATE_VALUE
from .smpc.inference import MAX_ACTIVATION, activation_bound
from .verification import BENIGN, POISONED, Verdict, verify_models

DEFENSES = ("verification", "none", "krum", "multi_krum", "median", "trimmed_mean", "fltrust")
# defenses that use every (validly signed) update and so predict no status: no detection scores
NON_CLASSIFYING = ("none", "median", "trimmed_mean")
Sink = Callable[[str, dict], None]


def model_hash(vector: np.ndarray) -> str:
    """SHA-256 of the float64 little-endian bytes: the hash sealed on the ledger."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f8").tobytes()).hexdigest()


@dataclass(frozen=True)
class RoundConfig:
    spec: ModelSpec
    n_hospitals: int
    local_epochs: int = 2
    learning_rate: float = 0.01
    batch_size: int = 32
    attack: str = "none"
    attack_params: dict = field(default_factory=dict)
    malicious: tuple[int, ...] = ()
    defense: str = "verification"
    defense_params: dict = field(default_factory=dict)
    encrypted: bool = False
    n_parties: int = 3
    seed: int = 0
    experiment: str = "local"

    def __post_init__(self) -> None:
        if self.defense not in DEFENSES:
            raise ValueError(f"unknown defense {self.defense!r}; choose one of {', '.join(DEFENSES)}")
        atk.params_for(self.attack)

    @property
    def attack_settings(self) -> dict:
        return atk.params_for(self.attack, self.attack_params)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["malicious"] = list(self.malicious)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RoundConfig:
        d = dict(d)
        d["spec"] = ModelSpec.from_dict(d["spec"])
        d["malicious"] = tuple(d.get("malicious", ()))
        return cls(**d)


def choose_malicious(n_hospitals: int, fraction: float, seed: int) -> tuple[int, ...]:
    n = int(round(fraction * n_hospitals))
    rng = np.random.default_rng([seed, 7919])
    return tuple(sorted(int(h) for h in rng.choice(n_hospitals, size=n, replace=False)))


def _rng(cfg: RoundConfig, *parts: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *parts])


# --- data --------------------------------------------------------------------------------

@dataclass
class FederatedData:
    parts: list[np.ndarray]  # row indices of each hospital into X_train
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    scaler: Standardizer | None = None  # fitted on the training pool; new records go through it

    def hospital(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.parts[h]
        return self.X_train[idx], self.y_train[idx]

    @property
    def sample_counts(self) -> dict[int, int]:
        """Each hospital's number of training rows, as the consortium registered it."""
        return {h: len(idx) for h, idx in enumerate(self.parts)}

    @property
    def root(self) -> tuple[np.ndarray, np.ndarray]:
        """FLTrust's small clean root dataset on the server: a slice of the validation set."""
        n = max(10, len(self.y_val) // 2)
        return self.X_val[:n], self.y_val[:n]


def prepare(table: Table, n_hospitals: int, *, scheme: str = "iid", alpha: float = 0.5, seed: int = 0,
            validation_fraction: float = 0.15, test_fraction: float = 0.2) -> FederatedData:
    """Deterministic split + standardisation (fitted on the training pool) + partition."""
    split = holdout_split(table.y, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed)
    scaler = Standardizer().fit(table.X[split.train])
    X = scaler.transform(table.X)
    y_train = table.y[split.train]
    parts = partition(y_train, n_hospitals, scheme=scheme, alpha=alpha, seed=seed)
    return FederatedData(parts, X[split.train], y_train, X[split.validation], table.y[split.validation],
                         X[split.test], table.y[split.test], scaler)


# --- hospitals ---------------------------------------------------------------------------

def hospital_identity(cfg: RoundConfig, hospital: int) -> Identity:
    """A simulated hospital's ECDSA key, derived from the experiment's name and seed: reproducible,
    for benchmarks and runs of fedcore alone, but anyone who knows both can compute it. Whoever
    needs signatures that only the hospital can make gives each hospital its own random key
    (``identity=`` to :func:`hospital_update`, ``public_keys=`` to :func:`finish_round`), as the
    web application does."""
    return _seeded_identity(cfg.experiment, cfg.seed, hospital)


@functools.lru_cache(maxsize=4096)  # derived once per hospital, as a hospital keeps its key
def _seeded_identity(experiment: str, seed: int, hospital: int) -> Identity:
    return Identity.from_seed(f"fedhealth:{experiment}:{seed}:hospital:{hospital}".encode())


def binding(cfg: RoundConfig, round_no: int, hospital: int, update_hash: str, n_samples: int) -> bytes:
    """What a hospital signs: its update bound to experiment, round and hospital (no replay), and
    the number of rows it trained on (its weight in the average, and the scale of its norm test)."""
    return f"fedhealth-update|{cfg.experiment}|{round_no}|{hospital}|{n_samples}|{update_hash}".encode()


@dataclass
class LocalUpdate:
    hospital: int
    vector: np.ndarray  # the update: local weights - global weights
    n_samples: int
    malicious: bool
    attack: str
    seconds: float
    update_hash: str = ""
    signature: bytes = b""


def hospital_update(cfg: RoundConfig, hospital: int, global_vector: np.ndarray, X_h: np.ndarray, y_h: np.ndarray,
                    round_no: int, identity: Identity | None = None) -> LocalUpdate:
    """The hospital's signed update (signed with ``identity``, else :func:`hospital_identity`)."""
    t0 = time.perf_counter()
    malicious = hospital in cfg.malicious and cfg.attack != "none"
    params = cfg.attack_settings
    rng = _rng(cfg, round_no, hospital, 1)
    n_rows = len(y_h)  # what it claims, a backdoor attacker too (its triggered copies would give it away)
    if malicious and cfg.attack == "label_flip":
        y_h = atk.label_flip(y_h, cfg.spec.n_classes)
    elif malicious and cfg.attack == "backdoor":
        X_h, y_h = atk.backdoor_data(X_h, y_h, rng, **params)
    weights = train_local(cfg.spec, unflatten(cfg.spec, global_vector), X_h, y_h, epochs=cfg.local_epochs,
                          learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                          seed=int(_rng(cfg, round_no, hospital).integers(2**31)))
    update = flatten(weights) - global_vector
    if malicious:
        if cfg.attack == "sign_flip":
            update = atk.sign_flip(update, **params)
        elif cfg.attack == "gaussian_noise":
            update = atk.gaussian_noise(update, rng, **params)
        elif cfg.attack == "scaling":
            update = atk.scaling(update, **params)
        elif cfg.attack == "backdoor":
            update = atk.scaling(update, factor=params["boost"])
    return sign(cfg, LocalUpdate(hospital, update, n_rows, malicious, cfg.attack if malicious else "",
                                 time.perf_counter() - t0), round_no, identity)


def sign(cfg: RoundConfig, u: LocalUpdate, round_no: int, identity: Identity | None = None) -> LocalUpdate:
    u.update_hash = model_hash(u.vector)
    identity = identity or hospital_identity(cfg, u.hospital)
    u.signature = identity.sign(binding(cfg, round_no, u.hospital, u.update_hash, u.n_samples))
    return u


# --- the server side of a round ----------------------------------------------------------

@dataclass
class UpdateRecord:
    hospital: int
    round_no: int
    malicious: bool
    attack: str
    # the scores: None for an update rejected before scoring (signature or values)
    val_accuracy: float | None
    val_loss: float | None
    update_norm: float | None
    cosine: float | None
    rows_harmed: float | None  # also None without a reference: fraction of validation rows moved away from their label
    status: str
    aggregated: bool
    encrypted: bool
    verify_seconds: float
    signature_ok: bool
    reason: str
    update_hash: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RoundOutcome:
    round_no: int
    global_vector: np.ndarray
    global_hash: str
    records: list[UpdateRecord]
    metrics: dict
    seconds: float


MAX_SAMPLES = 10**9  # rows a hospital may claim to have trained on


def check_signature(cfg: RoundConfig, u: LocalUpdate, round_no: int, seen: set[int],
                    public_keys: Mapping[int, str] | None = None,
                    sample_counts: Mapping[int, int] | None = None) -> tuple[bool, str]:
    """Reject forged, re-addressed or replayed updates, and those that claim another number of
    training rows than the hospital registered; the round goes on without them.

    ``seen``: the hospitals whose update this round was accepted. A hospital has one update per
    round; two hospitals that send the same vector (colluders) are each judged by the defense.
    ``public_keys``: each hospital's registered public key (PEM); without them, the simulated
    :func:`hospital_identity`. ``sample_counts``: each hospital's registered number of rows;
    without them, any whole number from 1 to MAX_SAMPLES is taken as claimed (and signed).
    """
    if model_hash(u.vector) != u.update_hash:
        return False, "update does not match the hash it was signed with"
    n = u.n_samples
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        return False, f"the update claims {str(n)[:20]} training rows; a count is a whole number from 1 to {MAX_SAMPLES:,}"
    if sample_counts is not None and n != sample_counts.get(u.hospital):
        return False, (f"the update claims {n:,} training rows where the hospital registered "
                       f"{sample_counts[u.hospital]:,}" if u.hospital in sample_counts else
                       "no number of training rows is registered for this hospital")
    if u.hospital in seen:
        return False, "replayed update: this hospital already submitted an update this round"
    if public_keys is None:
        public = hospital_identity(cfg, u.hospital).public_pem
    elif u.hospital in public_keys:
        public = public_keys[u.hospital]
    else:
        return False, "no public key is registered for this hospital"
    if not verify_signature(public, binding(cfg, round_no, u.hospital, u.update_hash, n), u.signature):
        return False, "signature does not verify for this hospital, round, experiment and row count"
    seen.add(u.hospital)
    return True, ""


def _mean_cosines(U: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(U, axis=1)
    Un = U / np.where(norms > 0, norms, 1.0)[:, None]
    C = Un @ Un.T
    k = len(U)
    return (C.sum(axis=1) - np.diag(C)) / max(1, k - 1)


def apply_collusion(cfg: RoundConfig, updates: list[LocalUpdate], round_no: int, n_parameters: int,
                    identities: Mapping[int, Identity] | None = None) -> None:
    """ALIE / min-max: malicious hospitals replace their update with one crafted from the
    benign updates of the round (they collude and see them; one that is not a usable update of
    the model's ``n_parameters`` is left out), then re-sign it, each with its key in
    ``identities`` (else the simulated :func:`hospital_identity`)."""
    if not atk.colludes(cfg.attack):
        return
    bad = [u for u in updates if u.hospital in cfg.malicious]
    good = np.array([u.vector for u in updates
                     if u.hospital not in cfg.malicious and not _unusable(u.vector, n_parameters)])
    if not bad or len(good) == 0:
        return
    crafted = atk.alie(good, len(updates), len(bad)) if cfg.attack == "alie" else atk.min_max(good)
    for u in bad:
        u.vector, u.malicious, u.attack = crafted.copy(), True, cfg.attack
        sign(cfg, u, round_no, (identities or {}).get(u.hospital))


def finish_round(cfg: RoundConfig, global_vector: np.ndarray, updates: list[LocalUpdate], X_val: np.ndarray,
                 y_val: np.ndarray, round_no: int, *, X_root: np.ndarray | None = None, y_root: np.ndarray | None = None,
                 X_test: np.ndarray | None = None, y_test: np.ndarray | None = None, sink: Sink | None = None,
                 public_keys: Mapping[int, str] | None = None, sample_counts: Mapping[int, int] | None = None,
                 colluder_identities: Mapping[int, Identity] | None = None) -> RoundOutcome:
    """Check, verify and aggregate one round's updates (``public_keys``, ``sample_counts``: see
    :func:`check_signature`; ``colluder_identities``: see :func:`apply_collusion`)."""
    t0 = time.perf_counter()
    sink = sink or (lambda kind, payload: None)
    updates = sorted(updates, key=lambda u: u.hospital)
    apply_collusion(cfg, updates, round_no, global_vector.size, colluder_identities)
    seen: set[int] = set()
    sig = [check_signature(cfg, u, round_no, seen, public_keys, sample_counts) for u in updates]
    for u, (ok, _) in zip(updates, sig, strict=True):
        sink("update", {"experiment": cfg.experiment, "round": round_no, "hospital": u.hospital,
                        "update_hash": u.update_hash, "signature_ok": ok,
                        "n_samples": u.n_samples if isinstance(u.n_samples, int) else None})  # None: not a count
    encrypted = cfg.encrypted and cfg.defense == "verification"
    # NaN or infinity would make every score NaN (and pass every threshold) or stop the round, and
    # so would a value too large for the SMPC ring (or for a norm in float64): such an update is
    # rejected like a forged one, not scored, and counts as zero where the defense needs a row
    unusable = [_unusable(u.vector, global_vector.size) for u in updates]
    compare_with_global = cfg.defense == "verification"
    if encrypted:  # and, scored under SMPC, one whose activations could leave the fixed-point range
        x_bound = float(np.abs(X_val).max())
        unusable = [why or _outside_inference_range(cfg.spec, global_vector + u.vector, x_bound)
                    for u, why in zip(updates, unusable, strict=True)]
        # so is the global model: an average of models that each fit need not (the bound multiplies
        # across layers); one that does not is not compared with, rather than misread
        compare_with_global = not _outside_inference_range(cfg.spec, global_vector, x_bound)
    usable = np.array([not why for why in unusable])
    valid = np.array([ok for ok, _ in sig]) & usable
    scored = np.flatnonzero(valid)
    U = np.array([u.vector if ok else np.zeros_like(global_vector) for u, ok in zip(updates, usable, strict=True)])
    norms = np.linalg.norm(U, axis=1)
    cosines = np.zeros(len(U))
    cosines[scored] = _mean_cosines(U[scored])
    # an honest update grows with the local steps taken (epochs x batches): compare norms per step,
    # so that large hospitals are not mistaken for boosted ones
    steps = np.array([max(1, cfg.local_epochs * -(-u.n_samples // cfg.batch_size)) if ok else 1
                      for u, (ok, _) in zip(updates, sig, strict=True)], dtype=np.float64)
    verdicts: list[Verdict] = [
        Verdict(POISONED, None, None, 0.0, "rejected: " + (why if not ok else unusable[i]), encrypted)
        for i, (ok, why) in enumerate(sig)]
    if len(scored):
        judged = verify_models(
            cfg.spec, [unflatten(cfg.spec, global_vector + U[i]) for i in scored], X_val, y_val, encrypted=encrypted,
            norms=(norms / steps)[scored], n_parties=cfg.n_parties, seed=cfg.seed * 1000 + round_no,
            reference=unflatten(cfg.spec, global_vector) if compare_with_global else None)
        for i, v in zip(scored, judged, strict=True):
            verdicts[i] = v
    status, aggregated, robust_delta = _defend(cfg, U, valid, verdicts, global_vector, X_root, y_root)
    status = [s if ok else POISONED for s, ok in zip(status, valid, strict=True)]
    aggregated &= valid
    accepted = np.flatnonzero(aggregated)
    if len(accepted) == 0:
        new_global = global_vector.copy()
    elif cfg.defense in ("verification", "none"):
        counts = np.array([updates[i].n_samples for i in accepted], dtype=np.float64)
        if encrypted:
            from .smpc import secure_weighted_sum

            delta = secure_weighted_sum([U[i] for i in accepted], list(counts / counts.sum()), n_parties=cfg.n_parties)
        else:
            delta = fedavg(U[accepted], counts).vector
        new_global = global_vector + delta
    else:
        new_global = global_vector + robust_delta
    records = []
    for i, u in enumerate(updates):
        v = verdicts[i]
        rec = UpdateRecord(u.hospital, round_no, u.malicious, u.attack, v.accuracy, v.loss,
                           float(norms[i]) if valid[i] else None, float(cosines[i]) if valid[i] else None,
                           v.rows_harmed, status[i], bool(aggregated[i]), encrypted, v.seconds, sig[i][0],
                           v.reason if cfg.defense == "verification" or not valid[i] else _robust_reason(cfg, status[i]),
                           u.update_hash)
        records.append(rec)
        sink("verdict", {"experiment": cfg.experiment, "round": round_no, "hospital": u.hospital,
                         "status": rec.status, "aggregated": rec.aggregated, "val_accuracy": _rounded(rec.val_accuracy),
                         "rows_harmed": _rounded(rec.rows_harmed),
                         "encrypted": encrypted, "reason": rec.reason})
    metrics = {}
    if X_test is not None:
        weights = unflatten(cfg.spec, new_global)
        metrics = {k: (round(v, 6) if v is not None else None) for k, v in evaluate(cfg.spec, weights, X_test, y_test).items()}
        if cfg.attack == "backdoor":
            p = cfg.attack_settings
            metrics["backdoor_success"] = round(atk.backdoor_success_rate(
                lambda X: predict(cfg.spec, weights, X), X_test, y_test, **p), 6)
    g_hash = model_hash(new_global)
    sink("global_model", {"experiment": cfg.experiment, "round": round_no, "model_hash": g_hash,
                          "defense": cfg.defense, "aggregated": [int(updates[i].hospital) for i in accepted],
                          "metrics": metrics})
    return RoundOutcome(round_no, new_global, g_hash, records, metrics, time.perf_counter() - t0)


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 6)


def _unusable(vector: np.ndarray, n_parameters: int) -> str:
    """Why an update cannot be scored or aggregated ('' when it can). The bound is the SMPC
    ring's, under every defense: no weight of a model on standardised features moves that far."""
    if vector.shape != (n_parameters,):
        return f"the update has {vector.size} values where the model has {n_parameters}"
    if not np.isfinite(vector).all():
        return "the update holds values that are not finite numbers"
    if vector.size and np.abs(vector).max() >= MAX_UPDATE_VALUE:
        return f"the update holds values beyond +-{MAX_UPDATE_VALUE:.3g}, too large for the secure computation's ring"
    return ""


def _outside_inference_range(spec: ModelSpec, vector: np.ndarray, x_bound: float) -> str:
    """Why the local model cannot be scored under SMPC ('' when it can): see MAX_ACTIVATION."""
    bound = activation_bound(unflatten(spec, vector), x_bound)
    if bound > MAX_ACTIVATION:
        return (f"the model's activations could reach {bound:.3g} on the validation set, beyond the +-{MAX_ACTIVATION:.3g} "
                "that the encrypted verification's fixed-point numbers hold")
    return ""


def _defend(cfg: RoundConfig, U, valid, verdicts, global_vector, X_root, y_root):
    """Predicted status, aggregated flag per update and, for robust aggregators, their aggregate
    (computed over the updates whose signature verified)."""
    k = len(U)
    if cfg.defense == "verification":
        status = [v.status for v in verdicts]
        return status, np.array([s == BENIGN for s in status]), None
    if cfg.defense == "none":
        return [BENIGN] * k, np.ones(k, bool), None
    params = dict(cfg.defense_params)
    n_bad = params.pop("n_malicious", len(cfg.malicious))
    rows = np.flatnonzero(valid)
    U = U[rows]
    if len(rows) == 0:
        return [POISONED] * k, np.zeros(k, bool), None
    if cfg.defense in ("krum", "multi_krum"):
        result = AGGREGATORS[cfg.defense](U, n_malicious=n_bad, **params)
    elif cfg.defense == "fltrust":
        if X_root is None:
            raise ValueError("FLTrust needs the server's root dataset")
        server = train_local(cfg.spec, unflatten(cfg.spec, global_vector), X_root, y_root, epochs=cfg.local_epochs,
                             learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, seed=cfg.seed)
        result = AGGREGATORS["fltrust"](U, flatten(server) - global_vector)
    else:
        result = AGGREGATORS[cfg.defense](U, **params)
    selected = np.zeros(k, bool)
    selected[rows[result.selected]] = True
    return [BENIGN if s else POISONED for s in selected], selected, result.vector


def _robust_reason(cfg: RoundConfig, status: str) -> str:
    if cfg.defense in ("median", "trimmed_mean"):
        return f"{cfg.defense.replace('_', ' ')} uses every update coordinate-wise; it does not classify updates"
    if cfg.defense == "none":
        return "no defense: every update is aggregated"
    return f"{cfg.defense} {'selected' if status == BENIGN else 'excluded'} this update"


# --- whole experiments in one process (shell, benchmarks, tests) -------------------------

def initial_vector(cfg: RoundConfig) -> np.ndarray:
    return flatten(init_weights(cfg.spec, cfg.seed))


def run_round(cfg: RoundConfig, data: FederatedData, global_vector: np.ndarray, round_no: int,
              sink: Sink | None = None) -> RoundOutcome:
    updates = [hospital_update(cfg, h, global_vector, *data.hospital(h), round_no) for h in range(cfg.n_hospitals)]
    X_root, y_root = data.root
    return finish_round(cfg, global_vector, updates, data.X_val, data.y_val, round_no, X_root=X_root, y_root=y_root,
                        X_test=data.X_test, y_test=data.y_test, sink=sink, sample_counts=data.sample_counts)


def run_experiment(cfg: RoundConfig, data: FederatedData, rounds: int, sink: Sink | None = None,
                   on_round: Callable[[RoundOutcome], None] | None = None) -> list[RoundOutcome]:
    vector = initial_vector(cfg)
    history = []
    for r in range(1, rounds + 1):
        outcome = run_round(cfg, data, vector, r, sink)
        vector = outcome.global_vector
        history.append(outcome)
        if on_round:
            on_round(outcome)
    return history


def centralised_reference(cfg: RoundConfig, data: FederatedData, rounds: int) -> dict:
    """The same model trained on the pooled training data for rounds x local epochs."""
    weights = train_centralised(cfg.spec, data.X_train, data.y_train, epochs=rounds * cfg.local_epochs,
                                learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, seed=cfg.seed)
    return {k: (round(v, 6) if v is not None else None) for k, v in evaluate(cfg.spec, weights, data.X_test, data.y_test).items()}


def detection_metrics(records: list[UpdateRecord]) -> dict[str, float | None]:
    """Precision, recall and false-positive rate of the predicted status against ground truth."""
    tp = sum(r.malicious and r.status == POISONED for r in records)
    fp = sum((not r.malicious) and r.status == POISONED for r in records)
    fn = sum(r.malicious and r.status != POISONED for r in records)
    tn = sum((not r.malicious) and r.status != POISONED for r in records)
    return detection_rates(tp, fp, fn, tn)


def detection_rates(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | None]:
    """The counts with precision, recall and false-positive rate (None where undefined)."""
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "false_positive_rate": fp / (fp + tn) if fp + tn else None,
    }
