"""Tear a stack down through the Automation API, whatever the operation before it left.

In order:
1. With `unlock="always"` (nothing else can be running on the stack: the sweep after its
   own operation ended, or a workflow in the stack's concurrency group), `pulumi cancel`
   first: it deletes a self-managed backend's stale lock files, or ends an update Pulumi
   Cloud still thinks runs. With `unlock="stale"`, only a lock the backend dates older than
   any operation of ours is cancelled, when a command finds the stack locked.
2. `pulumi stack export`: the creates a killed `up` left pending (infra.teardown.pending).
   Each with a fixed name is looked up in GCP; one refresh imports those that exist
   (`--import-pending-creates URN ID`) and drops the rest (`--clear-pending-creates`);
   pending updates and deletes are settled by the refresh itself.
3. `pulumi destroy`, twice if the first fails; then the stack is removed if asked.

The stack is anything with the Automation API stack's methods used here (`name`,
`cancel`, `export_stack`, `destroy`, `workspace.cli_api.refresh`, `workspace.work_dir`,
`workspace.env_vars`, `workspace.remove_stack`), so tests drive it with a double.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from infra.teardown.locks import is_locked, stale
from infra.teardown.pending import (
    CloudResource,
    Resolution,
    pending_creates,
    pending_operations,
    resolve,
)

Say = Callable[[str], None]
# A lock is stale after this long: more than GitHub's 6-hour job limit, longer than any
# sweep or deploy of this project runs.
STALE_LOCK_HOURS = 6.0
UNLOCK_MODES = ("always", "stale")


class TeardownStack(Protocol):
    name: str
    workspace: Any

    def cancel(self) -> None: ...

    def export_stack(self) -> Any: ...

    def destroy(self, **kwargs: Any) -> Any: ...


Exists = Callable[[CloudResource], "bool | str"]


class StackLockedError(Exception):
    """The stack is locked by an operation that may still run; the message says by what."""


@dataclass
class TeardownResult:
    destroyed: bool = False
    removed: bool = False
    unresolved: list[str] = field(default_factory=list)  # pending creates left as they are
    failure: str = ""

    @property
    def clean(self) -> bool:
        return self.destroyed and not self.unresolved


def recovery_commands(stack: str, resolution: Resolution | None = None) -> list[str]:
    """What a person runs to finish the teardown by hand."""
    commands = [f"pulumi cancel --yes --stack {stack}"]
    if resolution and (resolution.imports or resolution.dropped or resolution.unknown):
        imports = " ".join(
            f"--import-pending-creates {urn} --import-pending-creates {import_id}"
            for urn, import_id in resolution.imports
        )
        commands.append(
            f"pulumi refresh --yes --stack {stack} {imports + ' ' if imports else ''}"
            "--clear-pending-creates"
        )
    commands += [
        f"pulumi destroy --yes --stack {stack}",
        f"(or all of it: python -m infra teardown {stack})",
    ]
    return commands


@dataclass
class Teardown:
    stack: TeardownStack
    exists: Exists
    gcp_project: str
    say: Say = print
    unlock: str = "always"
    stale_lock_hours: float = STALE_LOCK_HOURS
    remove: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    resolution: Resolution | None = None

    def run(self) -> TeardownResult:
        result = TeardownResult()
        if self.unlock == "always":
            self._cancel("clearing any lock an interrupted operation left")
        try:
            self._settle_pending(result)
            result.destroyed = self._destroy()
        except StackLockedError as error:
            result.failure = str(error)
            return result
        if result.destroyed and self.remove and not result.unresolved:
            try:
                self.stack.workspace.remove_stack(self.stack.name)
                result.removed = True
            except Exception as error:  # the stack is empty; only its record is left
                self.say(f"the destroyed stack's record stays: {str(error)[-200:]}")
        return result

    def _cancel(self, why: str) -> None:
        self.say(f"== pulumi cancel --stack {self.stack.name} ({why})")
        try:
            self.stack.cancel()
        except Exception as error:  # nothing to cancel is the usual answer
            self.say(f"   nothing cancelled: {_last_line(error)}")

    def _locked_retry(self, what: str, operation: Callable[[], Any]) -> Any:
        """Run it; when the stack is locked by a stale lock (unlock "stale"), cancel and
        run it once more. A lock that may be live is refused with what to do."""
        try:
            return operation()
        except Exception as error:
            message = str(error)
            if not is_locked(message):
                raise
            if self.unlock == "stale" and stale(message, self.now(), self.stale_lock_hours):
                self._cancel(f"its lock is older than {self.stale_lock_hours:g} h")
                return operation()
            raise StackLockedError(
                f"{what}: stack {self.stack.name} is locked by an operation that may still "
                f"run ({_last_line(error)}). If none runs, clear it with "
                f"`pulumi cancel --yes --stack {self.stack.name}`, then destroy."
            ) from None

    def _settle_pending(self, result: TeardownResult) -> None:
        deployment = self._locked_retry("stack export", self.stack.export_stack).deployment
        operations = pending_operations(deployment)
        if not operations:
            return
        creates = pending_creates(deployment, self.gcp_project)
        answers: dict[str, bool | str] = {}
        for create in creates:
            if create.cloud is not None:
                answers[create.urn] = self.exists(create.cloud)
        resolution = resolve(creates, answers)
        self.resolution = resolution
        for urn, import_id in resolution.imports:
            self.say(f"   {urn}: its create was cut off and it exists ({import_id}): imported")
        for urn in resolution.dropped:
            self.say(f"   {urn}: its create was cut off; nothing to delete: dropped")
        for create, why in resolution.unknown:
            assert create.cloud is not None
            note = (
                f"{create.urn}: its create was cut off and whether the {create.cloud.kind} "
                f"{create.cloud.name} exists is unknown ({why}); it is left pending. Check with "
                f"`{create.cloud.describe_command}`"
            )
            result.unresolved.append(note)
            self.say(f"   {note}")
        self.say(
            f"== pulumi refresh --stack {self.stack.name}: {len(operations)} pending "
            f"operation(s) of an interrupted update"
        )
        clear = bool(resolution.dropped) and not resolution.unknown
        workspace = self.stack.workspace
        self._locked_retry(
            "refresh",
            lambda: workspace.cli_api.refresh(
                stack=self.stack.name,
                import_pending_creates=resolution.import_arguments,
                # Clearing drops every create not imported: only when each was checked.
                clear_pending_creates=clear,
                cwd=workspace.work_dir,
                additional_env=dict(workspace.env_vars),
                on_output=self.say,
            ),
        )

    def _destroy(self) -> bool:
        for attempt in (1, 2):
            self.say(f"== pulumi destroy --stack {self.stack.name}")
            try:
                self._locked_retry("destroy", lambda: self.stack.destroy(on_output=self.say))
            except StackLockedError:
                raise
            except Exception as error:  # tried again, then reported
                self.say(f"destroy failed (attempt {attempt}): {str(error)[-500:]}")
                continue
            return True
        return False


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    meaningful = [line for line in lines if "error" in line.lower()] or lines or [repr(error)]
    return meaningful[-1][:300]
