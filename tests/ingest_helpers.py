"""Rows shared by the ingest tests (batch ingest and row-level validation use the same fixture row)."""

BASE = {  # one valid transfer in the canonical columns
    "txn_id": "T1",
    "timestamp": "2024-05-01T14:30:00+08:00",
    "amount": "100",
    "currency": "USD",
    "channel": "mto",
    "sender_id": "S1",
    "receiver_id": "R1",
    "sender_name": "John Smith",
    "receiver_name": "Maria Santos",
    "sender_country": "US",
    "receiver_country": "PH",
    "receiver_region": "Cebu",
    "sender_phone": "+1 555 0100",
    "receiver_phone": "0917 123 4567",
    "reference": "school fees",
}
