from django.db import models


class Authority(models.Model):
    """A sealing authority (Proof of Authority). The private key is encrypted at rest."""

    name = models.CharField(max_length=100, unique=True)
    public_pem = models.TextField()
    fingerprint = models.CharField(max_length=16, unique=True)
    private_pem_encrypted = models.TextField()
    genesis = models.BooleanField(default=False, help_text="Member of the authority set at height 0")
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"


class ChainHead(models.Model):
    """One row, locked by every append: the chain never forks and heights never repeat."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    height = models.BigIntegerField(default=-1)
    block_hash = models.CharField(max_length=64, default="0" * 64)


class Block(models.Model):
    height = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    merkle_root = models.CharField(max_length=64)
    timestamp = models.CharField(max_length=40)
    authority = models.CharField(max_length=16, help_text="fingerprint of the sealing authority")
    signature = models.CharField(max_length=256)
    block_hash = models.CharField(max_length=64, unique=True)
    entry_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-height"]

    def __str__(self) -> str:
        return f"block {self.height}"

    @property
    def sealed_at(self) -> str:
        """The header's ISO timestamp as a person reads it: date and time to the second."""
        return self.timestamp[:19].replace("T", " ")


class Entry(models.Model):
    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="entries")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=40, db_index=True)
    payload = models.TextField(help_text="canonical JSON")
    payload_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of {kind, payload}: stored once")
    experiment = models.CharField(max_length=64, blank=True, db_index=True)
    round_no = models.IntegerField(null=True, blank=True, db_index=True)
    hospital = models.IntegerField(null=True, blank=True, db_index=True)
    # copies of the payload's experiment, round and hospital for lookups (fedcore.chain.lookup_fields),
    # checked against the payload when the chain is verified
    LOOKUP_COLUMNS = ("experiment", "round_no", "hospital")

    class Meta:
        ordering = ["block__height", "index"]
        constraints = [models.UniqueConstraint(fields=["block", "index"], name="ledger_entry_block_index")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.index} of block {self.block_id}"

    @property
    def kind_label(self) -> str:
        return self.kind.replace("_", " ").capitalize()
