"""ISO 20022 pacs.008 → canonical records: hand-checked mappings of the sample messages in
tests/data/iso20022/, every refusal with its message, and the records through validate_record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kalasag.ingest import RecordRejected, validate_record
from kalasag.model.config import load_config
from kalasag.model.schema import COLUMN_NAMES
from kalasag.service.iso20022 import NAMESPACES, Iso20022Error, parse_pacs008

DATA = Path(__file__).parent / "data" / "iso20022"
CONFIG = load_config()
NOW = datetime(2026, 11, 1, tzinfo=UTC)
NS8 = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(name: str) -> list[dict]:
    return parse_pacs008(sample(name))


def error(xml: bytes | str, **kw) -> str:
    with pytest.raises(Iso20022Error) as info:
        parse_pacs008(xml, **kw)
    return str(info.value)


def record(**values) -> dict:
    """A canonical record: the given columns, None for the others."""
    assert set(values) <= set(COLUMN_NAMES)
    return {c: values.get(c) for c in COLUMN_NAMES}


# ---- the sample messages, hand-mapped ------------------------------------------------------------
def test_single_transfer_maps_every_field():
    assert parse("single.xml") == [
        record(
            txn_id="TX-DE-PH-0001",  # TxId wins over EndToEndId and UETR
            timestamp="2025-03-03T09:15:00+01:00",  # AccptncDtTm, not GrpHdr/CreDtTm (09:16:05)
            amount="150.00",  # InstdAmt (the customer's amount), not IntrBkSttlmAmt 148.50
            currency="EUR",
            channel="bank",
            sender_id="DE89370400440532013000",  # DbtrAcct/Id/IBAN
            receiver_id="001234567890",  # CdtrAcct/Id/Othr/Id
            sender_name="Anna Keller",
            receiver_name="Maria Santos",
            sender_country="DE",
            receiver_country="PH",
            receiver_region="Cebu",  # Cdtr/PstlAdr/CtrySubDvsn
            sender_phone="+49-3012345678",  # PhneNb: the debtor has no MobNb
            receiver_phone="+63-9171234567",  # MobNb wins over PhneNb
            reference="school fees March 2025",  # the two Ustrd, joined by a space
        )
    ]


def test_batch_id_precedence_time_fallback_and_countries():
    tx1, tx2, tx3 = parse("batch.xml")
    assert tx1 == record(
        txn_id="TX-SG-1", timestamp="2025-06-10T13:58:00+08:00", amount="500", currency="SGD",
        channel="bank", sender_id="SG-ACC-778812", receiver_id="PH-ACC-100200", sender_name="Jose Reyes",
        receiver_name="Liza Reyes", sender_country="SG", receiver_country="PH", receiver_region="Iloilo",
        reference="allowance",
    )  # fmt: skip
    assert tx2 == record(
        txn_id="E2E-US-2",  # no TxId: EndToEndId
        timestamp="2025-06-10T14:00:00+08:00",  # no AccptncDtTm: GrpHdr/CreDtTm
        amount="75.25", currency="USD", channel="bank", sender_id="US-ACC-5521", receiver_id="PH-ACC-300400",
        sender_name="Mark Cruz", receiver_name="Ana Cruz",
        sender_country="US",  # Dbtr/CtryOfRes (no postal address)
        receiver_country="PH",  # letters 5-6 of the creditor agent's BIC KLSGPHMM
    )  # fmt: skip
    assert tx3["txn_id"] == "eb6305c9-1f7f-49de-aed0-16487c27b42d"  # EndToEndId NOTPROVIDED: UETR
    assert (tx3["amount"], tx3["currency"], tx3["sender_id"]) == ("1000.00", "SAR", "SA0380000000608010167519")
    assert (tx3["sender_country"], tx3["receiver_region"], tx3["reference"]) == ("SA", "Pampanga", "rent")


def test_account_identifiers_iban_othr_proxy_and_party_id():
    tx1, tx2, tx3 = parse("accounts.xml")  # pacs.008.001.12
    assert (tx1["sender_id"], tx1["receiver_id"]) == ("GB29NWBK60161331926819", "0917-ACC-55")  # IBAN, Othr
    assert (tx2["sender_id"], tx2["receiver_id"]) == ("GB-ACC-9", "+63-9181112222")  # Othr, Prxy/Id
    assert (tx3["sender_id"], tx3["receiver_id"]) == ("CUST-00042", "0917-ACC-55")  # Dbtr/Id/PrvtId/Othr/Id
    assert tx1["timestamp"] == "2025-10-20T07:45:10.250Z"
    assert tx1["receiver_region"] == "Metro Manila"
    assert tx3["receiver_country"] == "PH" and tx3["receiver_region"] is None  # no PstlAdr: the BIC


def test_minimal_message_leaves_optional_columns_empty():
    assert parse("minimal.xml") == [
        record(
            txn_id="E2E-MIN-1", timestamp="2025-01-15T22:30:00Z", amount="20000", currency="JPY", channel="bank",
            sender_id="JP-ACC-1", receiver_id="PH-ACC-2", sender_country="JP", receiver_country="PH",
        )
    ]  # fmt: skip


def test_channel_can_be_set_by_the_caller():
    assert parse_pacs008(sample("single.xml"), channel="mto")[0]["channel"] == "mto"


@pytest.mark.parametrize("version", [8, 9, 10, 11, 12])
def test_every_supported_version_is_read(version):
    ns = f"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.{version:02d}"
    assert ns in NAMESPACES
    xml = sample("single.xml").replace(NS8.encode(), ns.encode())
    assert parse_pacs008(xml)[0]["txn_id"] == "TX-DE-PH-0001"


def test_str_input_and_an_envelope_around_the_document():
    text = sample("single.xml").decode()
    assert parse_pacs008(text)[0]["amount"] == "150.00"
    body = text.split("?>", 1)[1]
    wrapped = f'<Envelope xmlns="urn:example:envelope"><AppHdr>hdr</AppHdr>{body}</Envelope>'
    assert parse_pacs008(wrapped.encode())[0]["txn_id"] == "TX-DE-PH-0001"


# ---- refusals: a precise message naming the element ----------------------------------------------
def test_bad_amount_names_the_transaction_and_element():
    assert error(sample("bad_amount.xml")) == (
        "CdtTrfTxInf[2]/IntrBkSttlmAmt: amount '1.234,50' is not a decimal number (xs:decimal, e.g. 1234.50)"
    )


def test_missing_currency_attribute():
    assert error(sample("missing_ccy.xml")) == "CdtTrfTxInf[2]/IntrBkSttlmAmt: missing Ccy attribute"


def test_instructed_amount_is_checked_too():
    xml = sample("single.xml").replace(b'<InstdAmt Ccy="EUR">150.00</InstdAmt>', b"<InstdAmt>150.00</InstdAmt>")
    assert error(xml) == "CdtTrfTxInf[1]/InstdAmt: missing Ccy attribute"
    xml = sample("single.xml").replace(b'Ccy="EUR">150.00<', b'Ccy="EUR">1e3<')
    assert error(xml).startswith("CdtTrfTxInf[1]/InstdAmt: amount '1e3' is not a decimal number")


def test_not_a_pacs008():
    assert error(sample("not_pacs008.xml")) == (
        "Document: namespace urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10 is not pacs.008 "
        "(accepted: pacs.008.001.08 to pacs.008.001.12)"
    )


def test_unsupported_version_and_missing_namespace():
    old = sample("single.xml").replace(NS8.encode(), b"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.02")
    assert error(old) == (
        "Document: pacs.008.001.02 is not a supported version (accepted: pacs.008.001.08 to pacs.008.001.12)"
    )
    bare = sample("single.xml").replace(f' xmlns="{NS8}"'.encode(), b"")
    assert error(bare).startswith("Document: no namespace; expected urn:iso:std:iso:20022:tech:xsd:pacs.008.001.xx")
    assert error(b"<html><body>hi</body></html>") == (
        "not a pacs.008 message: root element html is not an ISO 20022 Document"
    )


def test_malformed_xml_gives_the_position():
    assert error(sample("malformed.xml")) == "not well-formed XML: not well-formed (invalid token): line 15, column 2"


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
def test_entity_attacks_are_refused(name):
    message = error(sample(name))
    assert message.startswith("refused: the message declares a DTD")
    assert "root:" not in message  # nothing of /etc/passwd


def test_undeclared_entity_without_a_dtd_is_not_well_formed():
    xml = sample("single.xml").replace(b"<Nm>Anna Keller</Nm>", b"<Nm>&ghost;</Nm>")
    assert error(xml) == "not well-formed XML: undefined entity: line 28, column 12"


def test_size_limit_and_empty_message():
    xml = sample("single.xml")
    assert error(xml, max_bytes=1000) == f"message of {len(xml):,} bytes exceeds the limit of 1,000"
    assert error(b"") == "empty message"
    assert error(b"  \n ") == "empty message"


def test_group_header_checks():
    xml = sample("batch.xml")
    assert error(xml.replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>4</NbOfTxs>")) == (
        "GrpHdr/NbOfTxs: says 4, but the message holds 3 CdtTrfTxInf"
    )
    assert error(xml.replace(b"<CreDtTm>2025-06-10T14:00:00+08:00</CreDtTm>", b"")) == "GrpHdr: missing CreDtTm"
    start, end = xml.index(b"<CdtTrfTxInf>"), xml.rindex(b"</CdtTrfTxInf>") + len(b"</CdtTrfTxInf>")
    assert error(xml[:start] + xml[end:]) == "FIToFICstmrCdtTrf: no CdtTrfTxInf"


def test_transaction_without_any_id():
    xml = sample("single.xml")
    start, end = xml.index(b"<PmtId>"), xml.index(b"</PmtId>")
    xml = xml[:start] + b"<PmtId><EndToEndId>NOTPROVIDED</EndToEndId>" + xml[end:]
    assert error(xml) == "CdtTrfTxInf[1]/PmtId: no TxId, EndToEndId or UETR to identify the transfer"


def test_missing_settlement_amount():
    xml = sample("single.xml").replace(b'<IntrBkSttlmAmt Ccy="EUR">148.50</IntrBkSttlmAmt>', b"")
    assert error(xml) == "CdtTrfTxInf[1]: missing IntrBkSttlmAmt"


def test_wrong_body_element():
    xml = f'<Document xmlns="{NS8}"><FIToFIPmtStsRpt/></Document>'.encode()
    assert error(xml) == "Document: missing FIToFICstmrCdtTrf (found FIToFIPmtStsRpt)"


# ---- then through validate_record, as the service does --------------------------------------------
EUR_2025_03 = 1.080680952  # bundled fx_monthly.csv
SGD_2025_06 = 0.779060533
SAR_2025_06 = 0.2666666667
JPY_2025_01 = 0.006394432045


def test_single_through_validate_record():
    (raw,) = parse("single.xml")
    rec = validate_record(raw, CONFIG, now=NOW)
    assert rec["timestamp"] == "2025-03-03T08:15:00Z"
    assert rec["ts_epoch"] == 1740989700  # (20089 + 31 + 28 + 2) days * 86400 + 8.25 h
    assert (rec["amount"], rec["fx_rate"], rec["amount_usd"]) == (150.0, EUR_2025_03, 150 * EUR_2025_03)


def test_batch_and_minimal_through_validate_record():
    recs = [validate_record(r, CONFIG, now=NOW) for r in parse("batch.xml") + parse("minimal.xml")]
    assert [r["amount_usd"] for r in recs] == [500 * SGD_2025_06, 75.25, 1000 * SAR_2025_06, 20000 * JPY_2025_01]
    assert [r["ts_epoch"] for r in recs] == [1749535080, 1749535200, 1749535200, 1736980200]


def test_a_mapped_record_can_still_be_rejected_with_a_reason_code():
    xml = sample("minimal.xml").replace(b"<CreDtTm>2025-01-15T22:30:00Z</CreDtTm>", b"<CreDtTm>2025-01-15T22:30:00</CreDtTm>")
    (raw,) = parse_pacs008(xml)  # xs:dateTime allows no offset; the canonical schema does not
    with pytest.raises(RecordRejected) as info:
        validate_record(raw, CONFIG, now=NOW)
    assert (info.value.reason, info.value.field) == ("unparseable_timestamp", "timestamp")
    no_account = sample("minimal.xml").replace(b"<Id>JP-ACC-1</Id>", b"<Id/>")  # an empty Othr/Id
    (raw,) = parse_pacs008(no_account)
    assert raw["sender_id"] is None
    with pytest.raises(RecordRejected) as info:
        validate_record(raw, CONFIG, now=NOW)
    assert (info.value.reason, info.value.message) == ("missing_required_field", "required field(s) empty: sender_id")
