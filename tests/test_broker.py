"""The embedded broker: kombu's filesystem transport with atomic message files."""

from contextlib import ExitStack
from queue import Empty

import pytest
from kombu import Connection
from kombu.transport import filesystem

from fedhealth.broker import Transport


def _channel(conn_stack, folder, transport):
    conn = conn_stack.enter_context(Connection(
        transport=transport, transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder),
                                                "control_folder": str(folder), "store_processed": False}))
    return conn.default_channel


class ConsumerInTheMiddle:
    """A payload part whose encoding runs a consumer while the producer is inside ``_put``."""

    def __init__(self, consumer):
        self.consumer, self.outcome = consumer, None

    def __json__(self):
        try:
            self.outcome = self.consumer._get("q")
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            self.outcome = exc
        return "spied"


def test_the_filesystem_broker_uses_the_atomic_transport_and_a_real_broker_its_own(settings):
    from fedhealth.celery import app

    transport = app.connection_for_write().get_transport_cls()
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):  # the embedded default
        assert transport is Transport
    else:  # e.g. Redis, in CI's second pass
        assert not issubclass(transport, filesystem.Transport)


@pytest.mark.parametrize("transport, whole", [(Transport, True), (filesystem.Transport, False)],
                         ids=["fedhealth", "kombu"])
def test_a_consumer_never_sees_a_message_being_written(tmp_path, transport, whole):
    with ExitStack() as stack:
        producer, consumer = _channel(stack, tmp_path, transport), _channel(stack, tmp_path, transport)
        spy = ConsumerInTheMiddle(consumer)
        producer._put("q", {"i": 1, "spy": spy})
        if whole:
            assert isinstance(spy.outcome, Empty)  # nothing visible until the message is complete
            assert consumer._get("q") == {"i": 1, "spy": "spied"}
        else:  # kombu's own transport exposes the empty file: the message is read empty and lost
            assert type(spy.outcome).__name__ == "JSONDecodeError"
            with pytest.raises(Empty):
                consumer._get("q")
        assert list(tmp_path.glob("*.msg")) == []


def test_a_connection_to_the_folder_broker_logs_no_missing_hostname_warning(tmp_path, caplog):
    with Connection("filesystem://", transport=Transport, transport_options={"data_folder_in": str(tmp_path),
                                                            "data_folder_out": str(tmp_path)}) as conn:
        conn.ensure_connection(max_retries=1)
        conn.clone().release()
    assert not [r for r in caplog.records if "hostname" in r.getMessage()]
