"""Plan runs in the store: the record the plan workflow writes after every change, and what the
task pages, the calendar feed and the report read. Each function is one unit of work on a
connection; `ContactStore` runs it on its threads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from journeys.plans.records import OpenTask, PlanRecord, TaskRecord
from journeys.store.rows import in_utc, utc_now
from journeys.store.schema import plan_runs, plan_tasks


def record(conn: Connection, insert_run: Any, insert_task: Any, plan: PlanRecord) -> None:
    """Write `plan` as it stands now over what was recorded of it; `insert_run` and
    `insert_task` are the dialect's INSERTs into `plan_runs` and `plan_tasks`."""
    run = {
        **plan.model_dump(exclude={"tasks"}),
        "updated_at": utc_now(),
    }
    stmt = insert_run.values(run)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["plan_id"],
            set_={c: stmt.excluded[c] for c in run if c != "plan_id"},
        )
    )
    # A task the run no longer has (never, today) must not linger as someone's.
    conn.execute(
        delete(plan_tasks).where(
            plan_tasks.c.plan_id == plan.plan_id,
            plan_tasks.c.task_id.not_in([t.task_id for t in plan.tasks]),
        )
    )
    rows = [
        {**t.model_dump(), "plan_id": plan.plan_id, "template": plan.template, "position": i}
        for i, t in enumerate(plan.tasks)
    ]
    stmt = insert_task.values(rows)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["plan_id", "task_id"],
            set_={c: stmt.excluded[c] for c in rows[0] if c not in ("plan_id", "task_id")},
        )
    )


def _task(row: Any) -> TaskRecord:
    m = row._mapping
    return TaskRecord(
        task_id=m["task_id"],
        title=m["title"],
        kind=m["kind"],
        people=list(m["people"]),
        status=m["status"],
        due_at=in_utc(m["due_at"]),
        activated_at=in_utc(m["activated_at"]) if m["activated_at"] else None,
        rounds=m["rounds"],
        done_at=in_utc(m["done_at"]) if m["done_at"] else None,
        done_by=m["done_by"],
        outcomes=list(m["outcomes"]),
        outcome=m["outcome"],
        approved_by=list(m["approved_by"]),
        sent_back_by=m["sent_back_by"],
        sent_back_comment=m["sent_back_comment"],
    )


def _plans(conn: Connection, runs: list[Any]) -> list[PlanRecord]:
    ids = [r._mapping["plan_id"] for r in runs]
    tasks: dict[str, list[TaskRecord]] = {i: [] for i in ids}
    if ids:
        query = (
            select(plan_tasks)
            .where(plan_tasks.c.plan_id.in_(ids))
            .order_by(plan_tasks.c.plan_id, plan_tasks.c.position)
        )
        for row in conn.execute(query):
            tasks[row._mapping["plan_id"]].append(_task(row))
    found = []
    for r in runs:
        m = r._mapping
        found.append(
            PlanRecord(
                plan_id=m["plan_id"],
                template=m["template"],
                version=m["version"],
                instance=m["instance"],
                target=m["target"],
                manager=m["manager"],
                contact_id=m["contact_id"],
                state=m["state"],
                started_at=in_utc(m["started_at"]),
                finished_at=in_utc(m["finished_at"]) if m["finished_at"] else None,
                tasks=tasks[m["plan_id"]],
            )
        )
    return found


def one(conn: Connection, plan_id: str) -> PlanRecord | None:
    runs = list(conn.execute(select(plan_runs).where(plan_runs.c.plan_id == plan_id)))
    found = _plans(conn, runs)
    return found[0] if found else None


def of_template(conn: Connection, template: str) -> list[PlanRecord]:
    """Every run of `template` recorded, oldest first: the history its estimates come from."""
    query = (
        select(plan_runs)
        .where(plan_runs.c.template == template)
        .order_by(plan_runs.c.started_at, plan_runs.c.plan_id)
    )
    return _plans(conn, list(conn.execute(query)))


def open_tasks_of(conn: Connection, person_id: str) -> list[OpenTask]:
    """The active tasks of running plans that `person_id` still acts on (not an approval they
    approved in this round), soonest due first."""
    query = (
        select(
            plan_tasks.c.plan_id,
            plan_tasks.c.task_id,
            plan_tasks.c.people,
            plan_tasks.c.approved_by,
        )
        .join(plan_runs, plan_runs.c.plan_id == plan_tasks.c.plan_id)
        .where(plan_tasks.c.status == "active", plan_runs.c.state == "running")
    )
    # People are a JSON list: filtered here, over the open tasks only (a team's, not millions).
    # An approver who approved in this round has nothing left to do on it.
    mine = [
        r
        for r in conn.execute(query)
        if person_id in r._mapping["people"] and person_id not in r._mapping["approved_by"]
    ]
    plans = {
        p.plan_id: p
        for p in _plans(
            conn,
            list(
                conn.execute(
                    select(plan_runs).where(
                        plan_runs.c.plan_id.in_({r._mapping["plan_id"] for r in mine})
                    )
                )
            ),
        )
    }
    found = [
        OpenTask(plan=plans[r._mapping["plan_id"]], task=t)
        for r in mine
        for t in plans[r._mapping["plan_id"]].tasks
        if t.task_id == r._mapping["task_id"]
    ]
    return sorted(found, key=lambda o: (o.task.due_at, o.plan.plan_id))


def running(conn: Connection) -> list[PlanRecord]:
    """Every plan run still running, oldest first: the dashboard's board of open tasks."""
    query = (
        select(plan_runs)
        .where(plan_runs.c.state == "running")
        .order_by(plan_runs.c.started_at, plan_runs.c.plan_id)
    )
    return _plans(conn, list(conn.execute(query)))


def templates(conn: Connection) -> list[str]:
    """The templates of which a run was recorded, by id."""
    query = select(plan_runs.c.template).distinct().order_by(plan_runs.c.template)
    return list(conn.execute(query).scalars())
