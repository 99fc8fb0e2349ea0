"""An in-memory identity graph: attribution, links, merges and undo over the pure model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from crm.domain.handles import HandleKey
from crm.domain.model import Customer, Merge, merge, survivor_of, undo


@dataclass
class IdentityGraph:
    """Customers, their handles (identity rows) and merges, all in memory (reference model)."""

    customers: dict[str, Customer] = field(default_factory=dict)
    handles: dict[int, HandleKey] = field(default_factory=dict)
    merges: dict[str, Merge] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def resolve(self, customer_id: str) -> Customer:
        """The live customer an id stands for (following merges)."""
        c = self.customers[customer_id]
        while c.merged_into is not None:
            c = self.customers[c.merged_into]
        return c

    def owner(self, handle: HandleKey) -> Customer | None:
        """The customer holding the identity row of a handle, if any."""
        for c in self.customers.values():
            for row in c.rows["identities"]:
                if self.handles[row] == handle:
                    return c
        return None

    def new_customer(self) -> Customer:
        """A new empty card."""
        n = next(self._ids)
        c = Customer(id=f"c{n}")
        self.customers[c.id] = c
        return c

    def add_handle(self, customer: Customer, handle: HandleKey) -> None:
        """Give a customer a new identity row for a handle no one holds."""
        row = next(self._ids)
        self.handles[row] = handle
        customer.rows["identities"].add(row)

    def attribute(self, handle: HandleKey) -> Customer:
        """The customer of a message from `handle` (new if unknown), with a timeline entry."""
        found = self.owner(handle)
        if found is not None:
            c = self.resolve(found.id)
        else:
            c = self.new_customer()
            self.add_handle(c, handle)
        c.rows["timeline"].add(next(self._ids))
        return c

    def link(self, customer_id: str, handle: HandleKey) -> Merge | None:
        """Attach a handle to a customer; merges when another customer holds it."""
        target = self.resolve(customer_id)
        found = self.owner(handle)
        if found is None:
            self.add_handle(target, handle)
            return None
        holder = self.resolve(found.id)
        if holder.id == target.id:
            return None
        return self.merge(*survivor_of(target, holder))

    def merge(self, survivor: Customer, merged: Customer) -> Merge:
        """Merge two live customers."""
        m = merge(survivor, merged, merge_id=f"m{next(self._ids)}")
        self.merges[m.id] = m
        return m

    def undo(self, merge_id: str) -> None:
        """Undo a merge, restoring the merged-away customer."""
        m = self.merges[merge_id]
        undo(m, self.customers[m.survivor_id], self.customers[m.merged_id])
