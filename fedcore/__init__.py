"""FedHealth's science: datasets, local training, aggregation, attacks, SMPC, signing, chain.

Pure Python + numpy / scikit-learn / pycryptodome. Never imports Django or Celery.
"""
