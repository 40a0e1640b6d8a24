"""ISO 20022 pacs.008 (FI-to-FI customer credit transfer) → canonical transfer records.

    from kalasag.service.iso20022 import parse_pacs008, Iso20022Error
    records = parse_pacs008(xml_bytes)   # one dict per CdtTrfTxInf, canonical column names
    # then each goes through kalasag.ingest.validate_record, like a JSON transfer

Accepted: a `Document` in one of the namespaces urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08 … .12
(FIToFICustomerCreditTransferV08 … V12), as the root or as a direct child of an envelope root (e.g. a
business application header wrapper). The message is not validated against the XSD: the elements that
are mapped are read and checked (presence, the Ccy attribute, the xs:decimal form of amounts, NbOfTxs);
the rest is ignored. Values are returned as the XML text (amounts as decimal strings, date-times as
written) so that `validate_record` applies exactly the batch rules to them. The mapping table and its
precedences are in docs/service_iso20022.md.

Security: parsed with defusedxml, DTDs forbidden (so no entity expansion — "billion laughs" — and no
external entities or DTD retrieval); the message size is capped before parsing. Every problem raises
`Iso20022Error` with a one-line message naming the element path, e.g.
`CdtTrfTxInf[2]/IntrBkSttlmAmt: missing Ccy attribute`.
"""

from __future__ import annotations

import re
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

__all__ = ["DEFAULT_MAX_BYTES", "NAMESPACES", "Iso20022Error", "parse_pacs008"]

_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"
NAMESPACES: Final = tuple(f"{_PREFIX}pacs.008.001.{v:02d}" for v in range(8, 13))
DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024  # the HTTP body limit of the service; a ceiling for other callers
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z", re.ASCII)  # xs:decimal lexical space
_NOT_PROVIDED: Final = "NOTPROVIDED"  # the conventional EndToEndId of a payment without one


class Iso20022Error(ValueError):
    """The message cannot be read as a pacs.008: a one-line message naming the element path."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class _Reader:
    """Namespace-qualified access to the elements of one Document."""

    def __init__(self, ns: str) -> None:
        self.q = "{" + ns + "}"

    def child(self, el: Element | None, path: str) -> Element | None:
        for name in path.split("/"):
            if el is None:
                return None
            el = el.find(self.q + name)
        return el

    def text(self, el: Element | None, path: str) -> str | None:
        found = self.child(el, path)
        if found is None or found.text is None:
            return None
        return found.text.strip() or None

    def first(self, el: Element | None, *paths: str) -> str | None:
        for p in paths:
            value = self.text(el, p)
            if value is not None:
                return value
        return None


def _local(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _document(root: Element) -> tuple[Element, str]:
    """The pacs.008 Document (the root or a direct child of an envelope) and its namespace."""
    candidates = [root, *list(root)] if _local(root.tag)[1] != "Document" else [root]
    for el in candidates:
        ns, name = _local(el.tag)
        if name == "Document" and ns in NAMESPACES:
            return el, ns
    ns, name = _local(root.tag)
    docs = [el for el in candidates if _local(el.tag)[1] == "Document"]
    accepted = "pacs.008.001.08 to pacs.008.001.12"
    if docs:
        dns = _local(docs[0].tag)[0]
        if not dns:
            raise Iso20022Error(f"Document: no namespace; expected {_PREFIX}pacs.008.001.xx ({accepted})")
        what = dns.removeprefix(_PREFIX)
        if what.startswith("pacs.008."):
            raise Iso20022Error(f"Document: {what} is not a supported version (accepted: {accepted})")
        raise Iso20022Error(f"Document: namespace {dns} is not pacs.008 (accepted: {accepted})")
    where = f"{{{ns}}}{name}" if ns else name
    raise Iso20022Error(f"not a pacs.008 message: root element {where} is not an ISO 20022 Document")


def _amount(r: _Reader, tx: Element, name: str, where: str) -> tuple[str, str] | None:
    el = r.child(tx, name)
    if el is None:
        return None
    path = f"{where}/{name}"
    ccy = el.get("Ccy")
    if ccy is None:
        raise Iso20022Error(f"{path}: missing Ccy attribute")
    if not ccy.strip():
        raise Iso20022Error(f"{path}: empty Ccy attribute")
    text = (el.text or "").strip()
    if not text:
        raise Iso20022Error(f"{path}: empty amount")
    if not _DECIMAL.match(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise Iso20022Error(f"{path}: amount '{shown}' is not a decimal number (xs:decimal, e.g. 1234.50)")
    return text, ccy.strip()


def _bic_country(bic: str | None) -> str | None:
    """Letters 5–6 of a BIC (ISO 9362) are its ISO 3166 country."""
    return bic[4:6] if bic is not None and len(bic) in (8, 11) else None


def _party(r: _Reader, tx: Element, party: str, account: str, agent: str) -> dict[str, str | None]:
    p = r.child(tx, party)
    acct = r.child(tx, account)
    return {
        "id": r.first(acct, "Id/IBAN", "Id/Othr/Id", "Prxy/Id")
        or r.first(p, "Id/PrvtId/Othr/Id", "Id/OrgId/Othr/Id", "Id/OrgId/AnyBIC", "Id/OrgId/LEI"),
        "name": r.text(p, "Nm"),
        "country": r.first(p, "PstlAdr/Ctry", "CtryOfRes") or _bic_country(r.text(tx, f"{agent}/FinInstnId/BICFI")),
        "region": r.text(p, "PstlAdr/CtrySubDvsn"),
        "phone": r.first(p, "CtctDtls/MobNb", "CtctDtls/PhneNb"),
    }


def _transaction(r: _Reader, tx: Element, where: str, created: str, channel: str) -> dict[str, Any]:
    if r.child(tx, "PmtId") is None:
        raise Iso20022Error(f"{where}: missing PmtId")
    end_to_end = r.text(tx, "PmtId/EndToEndId")
    if end_to_end == _NOT_PROVIDED:
        end_to_end = None
    txn_id = r.text(tx, "PmtId/TxId") or end_to_end or r.text(tx, "PmtId/UETR")
    if txn_id is None:
        raise Iso20022Error(f"{where}/PmtId: no TxId, EndToEndId or UETR to identify the transfer")
    settled = _amount(r, tx, "IntrBkSttlmAmt", where)
    if settled is None:
        raise Iso20022Error(f"{where}: missing IntrBkSttlmAmt")
    amount, currency = _amount(r, tx, "InstdAmt", where) or settled
    sender = _party(r, tx, "Dbtr", "DbtrAcct", "DbtrAgt")
    receiver = _party(r, tx, "Cdtr", "CdtrAcct", "CdtrAgt")
    notes = [
        el.text.strip() for el in tx.iterfind(f"{r.q}RmtInf/{r.q}Ustrd") if el.text is not None and el.text.strip()
    ]
    record: dict[str, Any] = {
        "txn_id": txn_id,
        "timestamp": r.text(tx, "AccptncDtTm") or created,
        "amount": amount,
        "currency": currency,
        "channel": channel,
        "sender_id": sender["id"],
        "receiver_id": receiver["id"],
        "sender_name": sender["name"],
        "receiver_name": receiver["name"],
        "sender_country": sender["country"],
        "receiver_country": receiver["country"],
        "receiver_region": receiver["region"],
        "sender_phone": sender["phone"],
        "receiver_phone": receiver["phone"],
        "reference": " ".join(notes) or None,
    }
    return record


def parse_pacs008(xml: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, channel: str = "bank") -> list[dict[str, Any]]:
    """One canonical record (raw values, see module doc) per CdtTrfTxInf of a pacs.008 message.

    `channel` is the canonical channel given to every transfer (pacs.008 has no field for it; a
    money-transfer operator forwarding its own transfers may pass "mto"). Raises Iso20022Error.
    """
    size = len(xml)
    if size > max_bytes:
        raise Iso20022Error(f"message of {size:,} bytes exceeds the limit of {max_bytes:,}")
    if not (xml.strip() if isinstance(xml, (bytes, str)) else xml):
        raise Iso20022Error("empty message")
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise Iso20022Error(
            "refused: the message declares a DTD (<!DOCTYPE …>); ISO 20022 messages have none, and DTDs "
            "(entity expansion, external entities) are not accepted"
        ) from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise Iso20022Error(f"refused: the message uses entities or external references ({exc})") from None
    except ParseError as exc:
        raise Iso20022Error(f"not well-formed XML: {exc}") from None

    doc, ns = _document(root)
    r = _Reader(ns)
    body = r.child(doc, "FIToFICstmrCdtTrf")
    if body is None:
        first = next(iter(doc), None)
        found = f" (found {_local(first.tag)[1]})" if first is not None else ""
        raise Iso20022Error(f"Document: missing FIToFICstmrCdtTrf{found}")
    header = r.child(body, "GrpHdr")
    if header is None:
        raise Iso20022Error("FIToFICstmrCdtTrf: missing GrpHdr")
    created = r.text(header, "CreDtTm")
    if created is None:
        raise Iso20022Error("GrpHdr: missing CreDtTm")
    txs = body.findall(r.q + "CdtTrfTxInf")
    if not txs:
        raise Iso20022Error("FIToFICstmrCdtTrf: no CdtTrfTxInf")
    declared = r.text(header, "NbOfTxs")
    if declared is None:
        raise Iso20022Error("GrpHdr: missing NbOfTxs")
    if not declared.isascii() or not declared.isdigit() or int(declared) != len(txs):
        raise Iso20022Error(f"GrpHdr/NbOfTxs: says {declared}, but the message holds {len(txs)} CdtTrfTxInf")
    return [_transaction(r, tx, f"CdtTrfTxInf[{i}]", created, channel) for i, tx in enumerate(txs, start=1)]
