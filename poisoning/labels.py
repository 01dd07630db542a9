"""Human labels for the codes the poisoning pages show: classifiers, prediction sources, attacks, defenses.

One mapping per concept: attacks and defenses take the labels of the experiment form
(training.forms), so a code reads the same where an experiment is set up and where its
updates are reported. Pages show these labels; CSV downloads and the API keep the codes.
"""

from __future__ import annotations

from training.forms import DEFENSE_LABELS, ExperimentForm

CLASSIFIER_LABELS = {
    "logistic_regression": "Logistic regression",
    "linear_svm": "Linear SVM",
    "decision_tree": "Decision tree",
    "random_forest": "Random forest",
    "gradient_boosting": "Gradient boosting",
    "mlp": "Neural network (MLP)",
    "naive_bayes": "Naive Bayes",
}

SOURCE_LABELS = {"form": "Form", "batch": "CSV batch", "api": "API"}

ATTACK_LABELS = dict(ExperimentForm.base_fields["attack"].choices)


def _fallback(code: str) -> str:
    return str(code).replace("_", " ").capitalize()


def classifier_label(code: str) -> str:
    return CLASSIFIER_LABELS.get(code) or _fallback(code)


def source_label(code: str) -> str:
    return SOURCE_LABELS.get(code) or _fallback(code)


def attack_label(code: str) -> str:
    return ATTACK_LABELS.get(code) or _fallback(code)


def defense_label(code: str) -> str:
    return DEFENSE_LABELS.get(code) or _fallback(code)
