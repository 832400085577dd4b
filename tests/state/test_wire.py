"""The wire's hand-over to the client (`Wire._again`): what it sends again, and when it
loads the scripts again. A stand-in client records the commands (no Redis needed)."""

from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from payguard.state.wire import Wire


class _Client:
    """Answers each command with the next of `answers` (an exception is raised)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.sent: list[tuple[Any, ...]] = []

    def execute_command(self, *command: Any) -> Any:
        self.sent.append(command)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_script_lost_while_the_cluster_was_down_is_loaded_again_and_sent_once_more() -> None:
    """A `CAS` refused with CLUSTERDOWN goes through the client, which reaches the restarted
    node that lost its scripts: loaded again, sent again (before: the event went degraded)."""
    loads: list[int] = []
    client = _Client([NoScriptError("No matching script"), 1])
    wire = Wire(client, lambda: loads.append(1))  # type: ignore[arg-type]
    command = ("EVALSHA", "sha", 2, "pg:{user:u}", "pg:{user:u}:e", b"0", 1, "e1", 1)
    replies: list[Any] = [ResponseError("CLUSTERDOWN The cluster is down")]
    wire._again([command], replies, [0])
    assert replies == [1]
    assert loads == [1]
    assert client.sent == [command, command]


def test_a_refused_command_is_sent_again_through_the_client_alone() -> None:
    client = _Client([b"v"])
    wire = Wire(client, lambda: None)  # type: ignore[arg-type]
    replies: list[Any] = [b"ok", ResponseError("TRYAGAIN")]
    wire._again([("GET", "a"), ("GET", "b")], replies, [1])
    assert replies == [b"ok", b"v"]
    assert client.sent == [("GET", "b")]
