"""Who may read what: a customer their own cases; an agent their team's cases and any they own or are offered;
a supervisor or manager the cases of their teams (their own, and the teams of those who report to them);
a registered system with the `read_cases` action every case. Nobody else reads anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import Principal
from api.problems import Problem

READ_ACTION = "read_cases"


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    # The owners whose cases this viewer sees (staff), or None: every case (a system allowed to read).
    owners: frozenset[str] | None
    staff: bool

    def may_see(self, customer_id: str, owner: str | None, pending_owner: str | None = None) -> bool:
        if self.principal.customer_id is not None:
            return customer_id == self.principal.customer_id
        if self.owners is None:
            return True
        actor = self.principal.actor
        return owner in self.owners or pending_owner == actor

    def case_filter(self, params: list[object]) -> str:
        """A SQL condition on `cases` for what this viewer sees; appends its parameters to params."""
        if self.principal.customer_id is not None:
            params.append(self.principal.customer_id)
            return f"customer_id = ${len(params)}"
        if self.owners is None:
            return "TRUE"
        params.append(sorted(self.owners))
        owners = f"${len(params)}::text[]"
        params.append(self.principal.actor)
        return f"(owner = ANY({owners}) OR snapshot->>'pending_owner' = ${len(params)})"


async def viewer_for(pool, principal: Principal) -> Viewer:  # type: ignore[no-untyped-def]
    if principal.customer_id is not None:
        return Viewer(principal, frozenset(), staff=False)
    if principal.system is not None:
        actions = await pool.fetchval("SELECT actions FROM systems WHERE name = $1 AND active", principal.system)
        if actions is None or READ_ACTION not in actions:
            raise Problem(403, f"{principal.actor} is not registered to read cases (the `{READ_ACTION}` action)")
        return Viewer(principal, None, staff=False)
    agent = await pool.fetchrow("SELECT id, role, team FROM agents WHERE id = $1 AND active", principal.actor)
    if agent is None:
        raise Problem(403, f"{principal.actor} is not an active member of the roster")
    if agent["role"] == "agent":
        rows = await pool.fetch("SELECT id FROM agents WHERE team = $1", agent["team"])
    else:
        rows = await pool.fetch(
            """
            SELECT id FROM agents
            WHERE team = $1 OR supervisor_id = $2
               OR team IN (SELECT team FROM agents WHERE supervisor_id = $2)
               OR supervisor_id IN (SELECT id FROM agents WHERE supervisor_id = $2)
            """,
            agent["team"],
            agent["id"],
        )
    return Viewer(principal, frozenset({agent["id"], *(row["id"] for row in rows)}), staff=True)
