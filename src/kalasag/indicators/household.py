"""I-21, sender form: household fan-out — a sender paying several accounts of one household.

The receiver form of I-21 (kalasag.indicators.beneficiary.SeveralAccounts) looks from a beneficiary
at the other accounts its senders pay under the same name, phone or surname. This is the same
pattern seen from the customer: AMLC's "family operations" (an adult relative receives; research
note I-19) and its red flag "use of multiple accounts by a single transactor" (research note I-21)
mean that one facilitator household spreads the take over several relatives' accounts, and its
customers pay several of them. An OFW paying relatives is *related* to them (same surname: I-05's
pair-level name rule) and is left out; an unrelated foreign payer of three accounts of one
family is not what remittances look like.

Over the sender's watched payments to receivers it is unrelated to (I-05, the context's
`unrelated` column: the same definition as every other "unrelated" indicator), receiving accounts
are grouped into **households** by one key each:

- `name:` the receiver's normalized surname (the context's `receiver_family`) and region (trimmed,
  upper case), when both are known (`household_use_name`);
- `phone:` the receiver's phone key (the last `phone_digits` digits; `household_use_phone`).

An account can belong to several households (its surname-and-region one and its phone one). The
sender fires when it pays at least `household_min_accounts` distinct accounts of one household;
strength 1 (binary: the fitted weight reads as the log-likelihood ratio of the pattern). Senders
paying more than `max_sender_beneficiaries` distinct unrelated accounts (payroll, platforms) are left
out, as in the receiver form: common surnames collide among hundreds of payees.

Metrics (the household reported is the one with the most accounts; ties: the larger amount paid,
then the key): `i21_household_accounts`, `i21_household_kind` ("name" or "phone"),
`i21_household_key` (surname|REGION, or the phone key), `i21_household_paid_usd`,
`i21_household_payments`, `i21_households` (households with at least the threshold),
`i21_household_min_accounts` (the threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from kalasag.indicators.base import finish, integer, num, plural, usd

if TYPE_CHECKING:  # pragma: no cover
    from kalasag.indicators.base import Indicator
    from kalasag.indicators.context import Context


def household_fanout(ind: Indicator, ctx: Context, p: Any) -> ir.Table:
    """The sender form of I-21 (module docstring): one row per sender with unrelated watched payments."""
    t = ctx.side_tx("sender")
    t = t.filter(t.unrelated)
    deg = t.group_by("account_id").aggregate(_deg=t.counterpart_id.nunique())
    base = deg.filter(deg._deg <= p.max_sender_beneficiaries).select("account_id")
    t = t.semi_join(base, t.account_id == base.account_id)
    cols = dict(account_id=t.account_id, counterpart_id=t.counterpart_id, amount_usd=t.amount_usd.cast("float64"))
    parts = []
    if p.household_use_name:
        region = t.receiver_region.strip().upper()
        keep = ~t.receiver_family.startswith("id:") & region.notnull() & (region != "")
        parts.append(t.filter(keep).select(**cols, kind=ibis.literal("name"), key=t.receiver_family + "|" + region))
    if p.household_use_phone:
        parts.append(t.filter(t.receiver_phone_key.notnull()).select(
            **cols, kind=ibis.literal("phone"), key=t.receiver_phone_key))
    if not parts:  # both forms off: never fires
        return finish(base, ind, ibis.literal(False), ibis.literal(0.0))
    u = parts[0]
    for other in parts[1:]:
        u = u.union(other, distinct=False)
    hh = u.group_by(["account_id", "kind", "key"]).aggregate(
        accounts=u.counterpart_id.nunique().cast("int64"), paid=u.amount_usd.sum(), payments=u.count().cast("int64"))
    hh = hh.mutate(_q=(hh.accounts >= p.household_min_accounts).cast("int64"))
    # ties broken on the amount rounded to cents (float sums may differ in the last bits between engines)
    win = ibis.window(group_by=hh.account_id, order_by=[ibis.desc(hh.accounts), ibis.desc(hh.paid.round(2)), hh.kind, hh.key])
    ranked = hh.mutate(_r=ibis.row_number().over(win), _n=hh._q.sum().over(ibis.window(group_by=hh.account_id)))
    top = ranked.filter(ranked._r == 0)
    a = base.left_join(top, base.account_id == top.account_id)
    a = a.select(account_id=base.account_id, accounts=a.accounts.fill_null(0), kind=a.kind, key=a.key,
                 paid=a.paid, payments=a.payments, n=a._n.fill_null(0).cast("int64"))
    fired = a.accounts >= p.household_min_accounts
    return finish(a, ind, fired, ibis.ifelse(fired, 1.0, 0.0), household_accounts=a.accounts,
                  household_kind=a.kind, household_key=a.key, household_paid_usd=a.paid,
                  household_payments=a.payments, households=a.n,
                  household_min_accounts=ibis.literal(p.household_min_accounts))


def explain_household(row: Mapping[str, Any], side: str) -> str:
    """'paid 4 accounts of one household (surname SANTOS, region CEBU) …: USD 1,230 in 17 payments'."""
    n = integer(row, "i21_household_accounts")
    if not n:
        return "no household with several accounts among its unrelated beneficiaries"
    kind, key = row.get("i21_household_kind"), str(row.get("i21_household_key") or "")
    if kind == "name":
        surname, _, region = key.partition("|")
        who = f"surname {surname.upper()}, region {region}"
    else:
        who = f"shared phone number {key}"
    text = (f"paid {n} unrelated receiving accounts of one household ({who}): "
            f"{usd(num(row, 'i21_household_paid_usd'))} in {plural(integer(row, 'i21_household_payments'), 'payment')}")
    more = integer(row, "i21_households") - 1
    if more > 0:
        text += (f"; {plural(more, 'other household')} with at least "
                 f"{integer(row, 'i21_household_min_accounts')} such accounts too")
    return text
