"""The folders of one predictor run, laid out as an ODAHU InferenceJob pod has them, and what a run left behind.

``staging`` fills a ``Workspace``; a runner (``runners``) runs a candidate on it and returns a ``RunResult``;
the checks (``engine``) judge the result. Nothing here does any work: these are the shared records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.transport.exchange import Exchange

#: The three variables the ODAHU operator sets for the predictor container (and nothing else of ODAHU's).
ENV_MODEL, ENV_INPUT, ENV_OUTPUT = "ODAHU_MODEL_PATH", "ODAHU_INPUT_PATH", "ODAHU_OUTPUT_PATH"
#: The names the platform's docs use. They are NOT set on a cluster, so the kit never sets them either.
DOC_ONLY_NAMES = ("ODAHU_MODEL", "ODAHU_MODEL_INPUT", "ODAHU_MODEL_OUTPUT")

#: Where the operator mounts things inside the pod.
POD_MODEL, POD_INPUT, POD_OUTPUT = "/workspace/odahu-ws-model", "/workspace/odahu-ws-input", "/workspace/odahu-ws-raw-output"


@dataclass
class Workspace:
    """One run's folders on the host.

    ``input`` holds the requests that passed the platform's input filter; ``model`` the staged model (None when
    the model is inside the image, at ``model_in_image``); ``output`` does not exist before the run, as on the
    platform. ``skipped`` lists one line per request file the platform's input filter would have skipped.
    """

    root: Path
    input: Path
    output: Path
    model: Path | None
    model_in_image: str | None = None
    skipped: list[str] = field(default_factory=list)
    #: Decoys for the variables the platform's docs name but a cluster does not set (P-ENV's run only):
    #: variable name -> host path. Empty in every other run, where those variables are not set at all.
    decoys: dict[str, Path] = field(default_factory=dict)


@dataclass
class OutputEntry:
    """One entry found under the output folder after a run. ``path`` is relative, with ``/`` separators.

    ``kind`` is ``file``, ``dir``, ``symlink`` or ``other``; ``size`` is a file's size in bytes (the content is
    not kept: the judge reads each response once, from the workspace); ``disk`` the bytes of disk the entry
    takes (its allocated blocks, for any kind).
    """

    path: str
    kind: str
    size: int = 0
    disk: int = 0


@dataclass
class RunResult:
    """Everything one run of a candidate produced.

    ``exit_code`` is None when the run was killed for its timeout (``timed_out``) or could not start
    (``start_error`` says why, one line). ``entries`` is every entry under the output folder (files that are not
    ``*.json`` and subfolders included, so that what the platform would drop is visible); ``output_exists`` tells
    whether the candidate created the output folder at all. ``input_changes`` / ``model_changes`` list the
    relative paths added, removed or modified during the run (P-READONLY). ``command`` is the command line that
    ran (for reproduction). ``stopped`` says why the kit stopped a run before its timeout (it wrote more into
    the output folder than the host should hold); then ``exit_code`` is None too. ``leftovers`` lists one line per
    process of the run still running after its main process exited (or was killed), ``pid N: command line``
    (with the pid inside the run's PID namespace when it differs); the kit killed them all. Local runs only: a
    container's processes end with the container.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool
    output_exists: bool
    entries: list[OutputEntry]
    input_changes: list[str]
    model_changes: list[str]
    command: list[str]
    workspace: Workspace
    start_error: str | None = None
    stopped: str | None = None  # why the kit stopped the run early (too much output), one line
    leftovers: list[str] = field(default_factory=list)  # processes left running after the main one (killed)
    #: Online runs (a V2 server): request name -> what was sent and answered; None for a batch run, whose
    #: answers are files in the output folder. ``server_down`` says why the server stopped answering mid-run.
    exchanges: dict[str, Exchange] | None = None
    server_down: str | None = None
    concurrent: bool = False  # online: the requests were in flight together (no order to tell which came last)
    #: Online over REST with a gRPC endpoint too (``--url`` and ``--grpc``): the same requests' gRPC exchanges
    twins: dict[str, Exchange] | None = None

    def json_files(self) -> dict[str, int]:
        """The files the platform would keep a look at: ``*.json`` regular files directly in the output folder,
        name -> size in bytes, whatever their size."""
        return {e.path: e.size for e in self.entries if e.kind == "file" and "/" not in e.path and e.path.endswith(".json")}
