"""The store's record of plan runs: what the plan workflow writes, the pages and the report read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from journeys.plans.records import PlanRecord, TaskRecord, plan_workflow_id
from journeys.store import ContactStore

T0 = datetime(2027, 1, 4, 9, tzinfo=UTC)


def _plan(
    instance: str, target: date, tasks: list[TaskRecord], state: str = "running"
) -> PlanRecord:
    return PlanRecord(
        plan_id=plan_workflow_id("blog_post", instance),
        template="blog_post",
        version=1,
        instance=instance,
        target=target,
        manager="mia",
        state=state,  # type: ignore[arg-type]
        started_at=T0,
        tasks=tasks,
    )


def _task(task_id: str, people: list[str], status: str, due: timedelta) -> TaskRecord:
    return TaskRecord(
        task_id=task_id,
        title=task_id.title(),
        kind="task",
        people=people,
        status=status,  # type: ignore[arg-type]
        due_at=T0 + due,
        activated_at=T0 if status != "waiting" else None,
        rounds=1 if status != "waiting" else 0,
    )


async def test_a_plan_is_recorded_over_its_last_record(
    store_on_each_database: ContactStore,
) -> None:
    store = store_on_each_database
    first = _plan("p1", date(2027, 2, 1), [_task("idea", ["ana"], "active", timedelta(days=3))])
    await store.record_plan(first)
    done = first.tasks[0].model_copy(
        update={"status": "done", "done_at": T0 + timedelta(days=4), "done_by": "ana"}
    )
    # Sent back once with a comment, and an approval one of its two approvers has given.
    outline = _task("outline", ["bo"], "active", timedelta(days=9)).model_copy(
        update={"rounds": 2, "sent_back_by": "mia", "sent_back_comment": "Shorter, please. " * 50}
    )
    approve = _task("approve", ["mia", "cy"], "active", timedelta(days=12)).model_copy(
        update={"kind": "approval", "approved_by": ["mia"]}
    )
    second = first.model_copy(update={"tasks": [done, outline, approve]})
    await store.record_plan(second)
    assert await store.plan(first.plan_id) == second
    assert await store.plans_of("blog_post") == [second]
    assert await store.plan("plan:blog_post:nope") is None


async def test_open_tasks_are_a_persons_active_tasks_of_running_plans_soonest_first(
    store_on_each_database: ContactStore,
) -> None:
    store = store_on_each_database
    await store.record_plan(
        _plan(
            "later",
            date(2027, 3, 1),
            [
                _task("idea", ["ana"], "done", timedelta(days=1)),
                _task("approve", ["ana", "bo", "cy"], "active", timedelta(days=20)).model_copy(
                    update={"kind": "approval", "approved_by": ["bo"]}
                ),
                _task("publish", ["ana"], "waiting", timedelta(days=30)),
            ],
        )
    )
    await store.record_plan(
        _plan("sooner", date(2027, 2, 1), [_task("idea", ["ana"], "active", timedelta(days=2))])
    )
    await store.record_plan(
        _plan(
            "stopped",
            date(2027, 2, 1),
            [_task("idea", ["ana"], "active", timedelta(days=1))],
            state="cancelled",
        )
    )
    mine = await store.open_tasks_of("ana")
    assert [(o.plan.instance, o.task.task_id) for o in mine] == [
        ("sooner", "idea"),
        ("later", "approve"),
    ]
    assert [t.task_id for t in mine[1].plan.tasks] == ["idea", "approve", "publish"]
    assert [(o.plan.instance, o.task.task_id) for o in await store.open_tasks_of("cy")] == [
        ("later", "approve")
    ]
    # Bo approved in this round: nothing left for them to do on it.
    assert await store.open_tasks_of("bo") == []
    assert await store.open_tasks_of("dee") == []
