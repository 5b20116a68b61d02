"""`journeys validate`'s checks: each class of mistake names the file, the line and the step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from journeys.library import SpecError, load_journey, load_library
from journeys.settings import LIBRARY_DIR

HEADER = """\
id: broken
version: 1
description: a journey with one mistake
trigger: manual
steps:
"""


def write(tmp_path: Path, steps: str) -> Path:
    shutil.copytree(LIBRARY_DIR / "templates", tmp_path / "templates", dirs_exist_ok=True)
    path = tmp_path / "broken.yaml"
    path.write_text(HEADER + steps)
    return path


def problems(tmp_path: Path, steps: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_journey(write(tmp_path, steps))
    return [str(p) for p in err.value.problems]


def test_the_library_is_valid() -> None:
    assert set(load_library(LIBRARY_DIR)) >= {"lead_nurturing", "mobile_app_nurturing"}


def test_unknown_next_step(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
    next: goodbye
""",
    )
    assert found == [f"{tmp_path}/broken.yaml:6: step 'hello': unknown next step 'goodbye'"]


def test_unreachable_step(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: done
    kind: end
  - id: orphan
    kind: end
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: step 'orphan': step is not reachable from the first step"
    ]


def test_wait_for_that_refers_to_a_step_that_is_not_a_send(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: pause
    kind: wait
    duration: 1d
  - id: opened
    kind: wait_for
    event: opened
    step: pause
    timeout: 3d
    on_event: done
    on_timeout: done
  - id: done
    kind: end
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:9: step 'opened': "
        "wait_for refers to 'pause', a wait step, not a send"
    ]


def test_loop_with_no_wait_in_it(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
  - id: again
    kind: goto
    target: hello
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:6: step 'hello': loop with no wait in it: hello -> again -> hello"
    ]


def test_a_loop_with_a_wait_is_fine(tmp_path: Path) -> None:
    spec = load_journey(
        write(
            tmp_path,
            """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
  - id: pause
    kind: wait
    duration: 7d
  - id: again
    kind: goto
    target: hello
""",
        )
    )
    assert spec.graph() == {"hello": ["pause"], "pause": ["again"], "again": ["hello"]}


def test_unknown_template(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: sms
    template: lead_intro
  - id: done
    kind: end
""",
    )
    assert len(found) == 1
    assert found[0].startswith(
        f"{tmp_path}/broken.yaml:6: step 'hello': unknown sms template 'lead_intro'"
    )


def test_unknown_condition(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: check
    kind: branch
    conditions:
      - when: has_fax
        next: done
    otherwise: done
  - id: done
    kind: end
""",
    )
    assert len(found) == 1
    assert found[0].startswith(
        f"{tmp_path}/broken.yaml:6: step 'check': unknown condition 'has_fax'"
    )


BRANCH_ON_BEHAVIOUR = """\
  - id: check
    kind: branch
    conditions:
      - when: grade:E
        next: done
      - when: count:purchase within 6m == 1
        next: done
      - when: count:purchse within 180d == 1
        next: done
      - when: count:clicked within 30d >= 2
        next: done
    otherwise: done
  - id: done
    kind: end
"""


def test_grade_letters_count_windows_and_counted_events_are_checked(tmp_path: Path) -> None:
    where = f"{tmp_path}/broken.yaml:6: step 'check'"
    assert problems(tmp_path, BRANCH_ON_BEHAVIOUR) == [
        f"{where}: 'grade:E': unknown grade 'E' (grades are A, B, C, D)",
        f"{where}: 'count:purchase within 6m == 1': the window '6m' is not a number of days "
        "from 1d to 3660d",
        f"{where}: 'count:purchse within 180d == 1' counts event 'purchse', which is never "
        "produced; declare custom events under 'events:'",
    ]


def test_schema_mistakes_name_the_step_and_field(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: pause
    kind: wait
    duration: three days
  - id: dance
    kind: dance
""",
    )
    assert found[0] == (
        f"{tmp_path}/broken.yaml:6: step 'pause': duration: 'three days' is not a duration: "
        "use numbers with units w, d, h, m, s (e.g. 3d, 1d12h)"
    )
    assert found[1].startswith(f"{tmp_path}/broken.yaml:9: step 'dance': unknown kind 'dance'")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: nope
    next: nowhere
  - id: check
    kind: branch
    conditions:
      - when: has_fax
        next: hello
    otherwise: hello
""",
    )
    assert len(found) == 3


def test_params_fill_the_steps_and_unknown_ones_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - id: pause
    kind: wait
    duration: ${gap}
  - id: done
    kind: end
""",
    )
    path.write_text(path.read_text().replace("steps:\n", "params:\n  gap: 2d\nsteps:\n"))
    spec = load_journey(path)
    assert spec.params == {"gap": "2d"}
    assert spec.step("pause").duration == "2d"  # type: ignore[union-attr]
    path.write_text(path.read_text().replace("${gap}", "${gapp}"))
    with pytest.raises(SpecError) as err:
        load_journey(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:8: step 'pause': unknown parameter ${{gapp}}"
    ]


WAIT_FOR_OPENNED = """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
  - id: read_it
    kind: wait_for
    event: openned
    step: hello
    timeout: 3d
    on_event: done
    on_timeout: done
  - id: done
    kind: end
"""


def test_wait_for_an_event_nothing_produces(tmp_path: Path) -> None:
    assert problems(tmp_path, WAIT_FOR_OPENNED) == [
        f"{tmp_path}/broken.yaml:10: step 'read_it': event 'openned' is never produced "
        "(did you mean 'opened'?); declare custom events under 'events:'"
    ]


def test_a_declared_custom_event_may_be_waited_for(tmp_path: Path) -> None:
    path = write(tmp_path, WAIT_FOR_OPENNED)
    path.write_text(path.read_text().replace("steps:\n", "events: [openned]\nsteps:\n"))
    assert load_journey(path).events == ["openned"]


def test_the_trigger_and_exit_events_may_be_waited_for(tmp_path: Path) -> None:
    path = write(tmp_path, WAIT_FOR_OPENNED.replace("openned", "purchase"))
    with pytest.raises(SpecError):
        load_journey(path)
    path.write_text(path.read_text().replace("trigger: manual", "trigger: purchase"))
    load_journey(path)
    path.write_text(
        path.read_text().replace("trigger: purchase", "trigger: manual\nexit_events: [purchase]")
    )
    load_journey(path)


def test_a_bad_duration_does_not_hide_the_other_problems(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: nope
    next: pause
  - id: pause
    kind: wait
    duration: three days
  - id: read_it
    kind: wait_for
    event: openned
    timeout: 3d
    on_event: pause
    on_timeout: nowhere
  - id: done
    kind: end
""",
    )
    assert found[0].startswith(f"{tmp_path}/broken.yaml:11: step 'pause': duration: 'three days'")
    assert found[1].startswith(f"{tmp_path}/broken.yaml:6: step 'hello': unknown email template")
    assert found[2:] == [
        f"{tmp_path}/broken.yaml:14: step 'read_it': unknown next step 'nowhere'",
        f"{tmp_path}/broken.yaml:14: step 'read_it': event 'openned' is never produced "
        "(did you mean 'opened'?); declare custom events under 'events:'",
    ]


def test_one_wrong_next_is_one_problem(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
    next: goodbye
  - id: pause
    kind: wait
    duration: 3d
  - id: again
    kind: send
    channel: email
    template: lead_intro
  - id: done
    kind: end
""",
    )
    assert found == [f"{tmp_path}/broken.yaml:6: step 'hello': unknown next step 'goodbye'"]


def test_a_misspelt_step_reference_suggests_the_nearest_id(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: hello
    kind: send
    channel: email
    template: lead_intro
    next: dnoe
  - id: read_it
    kind: wait_for
    event: opened
    step: helo
    timeout: 3d
    on_event: done
    on_timeout: done
  - id: done
    kind: end
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:6: step 'hello': unknown next step 'dnoe' (did you mean 'done'?)",
        f"{tmp_path}/broken.yaml:11: step 'read_it': "
        "wait_for refers to unknown step 'helo' (did you mean 'hello'?)",
    ]


def test_a_step_only_a_wrong_next_leads_from_is_still_unreachable(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: done
    kind: end
  - id: orphan
    kind: goto
    target: nowhere
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:8: step 'orphan': unknown next step 'nowhere'",
        f"{tmp_path}/broken.yaml:8: step 'orphan': step is not reachable from the first step",
    ]


def test_a_key_given_twice_is_named_with_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  - id: pause
    kind: wait
    duration: 3d
    next: done
    next: pause
  - id: done
    kind: end
""",
    )
    assert found == [
        f"{tmp_path}/broken.yaml:10: step 'pause': 'next' is given twice (first on line 9)"
    ]


def test_a_top_level_key_given_twice_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "  - id: done\n    kind: end\n")
    path.write_text(path.read_text() + "steps:\n  - id: again\n    kind: end\n")
    with pytest.raises(SpecError) as err:
        load_journey(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:8: 'steps' is given twice (first on line 5)"
    ]


HOSTILE = "id: hostile\nversion: 1\ndescription: x\ntrigger: manual\n"


def refused(tmp_path: Path, content: bytes) -> list[str]:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as err:
        load_journey(path, LIBRARY_DIR)
    return [str(p) for p in err.value.problems]


def test_yaml_aliases_are_refused_before_they_expand(tmp_path: Path) -> None:
    # Six levels of ten copies: a million values out of a few hundred bytes (ten levels would
    # never finish expanding).
    levels = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    text = HOSTILE + "params:\n" + "\n".join(levels) + "\nsteps:\n  - id: done\n    kind: end\n"
    assert refused(tmp_path, text.encode()) == [
        f"{tmp_path}/hostile.yaml:7: not valid YAML: aliases (*name) are not allowed in this file"
    ]


def test_deep_nesting_is_a_clear_error(tmp_path: Path) -> None:
    text = HOSTILE + "steps: " + "[" * 5000 + "]" * 5000 + "\n"
    (problem,) = refused(tmp_path, text.encode())
    assert problem.startswith(f"{tmp_path}/hostile.yaml:5: not valid YAML: ")
    assert "nest" in problem


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    content = (HOSTILE + "steps:\n  - id: done\n    kind: end\n    tag: café\n").encode("latin-1")
    assert refused(tmp_path, content) == [f"{tmp_path}/hostile.yaml:8: not UTF-8 text (byte 0xe9)"]


def test_thousands_of_steps_in_a_row_are_checked(tmp_path: Path) -> None:
    chain = "".join(f"  - id: s{i}\n    kind: tag\n    add: [x]\n" for i in range(3000))
    path = tmp_path / "long.yaml"
    path.write_text(HOSTILE + "steps:\n" + chain + "  - id: done\n    kind: end\n")
    spec = load_journey(path, LIBRARY_DIR)
    assert len(spec.steps) == 3001 and spec.next_of(spec.step("s2999"), None) == "done"
    # A loop of instant steps as long as the journey is still found, from its first step.
    looped = chain + "  - id: back\n    kind: goto\n    target: s0\n"
    (problem,) = refused(tmp_path, (HOSTILE + "steps:\n" + looped).encode())
    assert "step 's0': loop with no wait in it: s0 -> s1 -> s2" in problem
    assert problem.endswith("s2999 -> back -> s0")


def test_a_goal_names_an_event_something_produces_and_a_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "  - {id: bye, kind: end}\n")
    text = path.read_text()
    path.write_text(text.replace("steps:\n", "goal: {event: purchse, within: 14d}\nsteps:\n"))
    with pytest.raises(SpecError) as err:
        load_journey(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:5: goal: event 'purchse' is never produced; declare custom events under 'events:'"
    ]
    path.write_text(
        text.replace(
            "steps:\n", "events: [purchase]\ngoal: {event: purchase, within: 14x}\nsteps:\n"
        )
    )
    with pytest.raises(SpecError) as err:
        load_journey(path)
    assert "goal.within: '14x' is not a duration" in str(err.value.problems[0])
    path.write_text(
        text.replace(
            "steps:\n", "events: [purchase]\ngoal: {event: purchase, within: 14d}\nsteps:\n"
        )
    )
    goal = load_journey(path).goal
    assert goal is not None and goal.window().days == 14
