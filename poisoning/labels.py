"""Human labels for the codes the poisoning pages show: classifiers, prediction sources, attacks, defenses.

One mapping per concept: attacks and defenses take the labels of the provider's pages
(training.templatetags.fh_format), so a code reads the same wherever it is shown. Pages show
these labels; CSV downloads and the API keep the codes.
"""

from __future__ import annotations

from training.templatetags.fh_format import attack_label, defense_label, labeller

__all__ = ["attack_label", "classifier_label", "defense_label", "source_label"]

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


classifier_label = labeller(CLASSIFIER_LABELS)
source_label = labeller(SOURCE_LABELS)

