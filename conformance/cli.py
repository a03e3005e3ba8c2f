"""``odahu-conformance``: the command line over the same engine as the pytest plugin.

Exit codes: 0 everything passed; 1 something failed a check; 2 the command could not run (bad arguments,
missing folder, refused overwrite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance import __version__, goldens, validate
from conformance.documents import DEFAULT_MAX_BYTES
from conformance.model import ModelProblem, load_model
from conformance.paths import kit_fixtures, kit_model

OK, FAILED, UNUSABLE = 0, 1, 2


class UsageProblem(Exception):
    """The command cannot run; the message is one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odahu-conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser(
        "validate", help="the platform's validate step, done strictly",
        description="Check every entry of SRC as V2 requests (input) or responses (output); copy the files that "
        "pass to DEST; print one line per failing file with its requirement ID and JSON pointer, and what the "
        "platform would have done with it. Exit 1 if any entry failed.",
    )
    check.add_argument("side", choices=["input", "output"])
    check.add_argument("source", metavar="SRC", type=Path)
    check.add_argument("-d", "--dest", metavar="DEST", type=Path, help="copy the passing files here")
    check.add_argument("--force", action="store_true", help="overwrite files that already exist in DEST")
    check.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse files larger than this")
    check.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")

    fixtures = commands.add_parser("fixtures", help="generate or check golden fixtures")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    generate = fixture_commands.add_parser(
        "generate", help="write new golden pairs computed by the oracle",
        description="Write request/response pairs: --curated writes the kit's curated cases; --count N --seed S "
        "writes N random requests, the same for the same seed. Responses come from the oracle, never from a "
        "candidate. Existing files are never overwritten without --force.",
    )
    generate.add_argument("--count", type=int, default=0)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--curated", action="store_true", help="also write the kit's curated cases")
    generate.add_argument("--multiplier", type=int, help="another multiplier (writes OUT/model/ so the set is self-describing)")
    generate.add_argument("--model", type=Path, default=None, help="model folder (default: the kit's model)")
    generate.add_argument("--out", type=Path, default=None, help="fixture folder (default: the kit's fixtures/)")
    generate.add_argument("--force", action="store_true", help="overwrite existing files")
    check_fixtures = fixture_commands.add_parser(
        "check", help="every pair valid and equal to the oracle (K-GOLDEN)",
    )
    check_fixtures.add_argument("--fixtures", type=Path, default=None, help="fixture folder (default: the kit's)")
    check_fixtures.add_argument("--model", type=Path, default=None, help="model folder (default: FIXTURES/model, else the kit's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args)
        if args.fixtures_command == "generate":
            return _generate(args)
        return _check_fixtures(args)
    except (UsageProblem, ModelProblem, goldens.Refused) as problem:
        print(f"odahu-conformance: {problem}", file=sys.stderr)
        return UNUSABLE
    except KeyboardInterrupt:
        return 130


def _validate(args: argparse.Namespace) -> int:
    source: Path = args.source
    if not source.is_dir():
        raise UsageProblem(f"{source}: not a folder")
    if args.dest is not None:
        if args.dest.exists() and not args.dest.is_dir():
            raise UsageProblem(f"{args.dest}: exists and is not a folder")
        if args.dest.resolve() == source.resolve():
            raise UsageProblem(f"{args.dest}: DEST must differ from SRC")
        if not args.force:
            clashes = [p.name for p in validate.entries(source) if (args.dest / p.name).exists()]
            if clashes:
                more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
                raise UsageProblem(f"{args.dest / clashes[0]} exists{more}; nothing copied (use --force to overwrite)")
        args.dest.mkdir(parents=True, exist_ok=True)
    passed = failed = dropped = 0
    for verdict in validate.validate_folder(source, args.side, args.max_bytes):
        if verdict.ok:
            passed += 1
            if args.dest is not None:
                validate.copy_atomically(verdict.path, args.dest / verdict.path.name)
            if not args.quiet:
                print(f"{verdict.path}: ok")
        else:
            failed += 1
            dropped += not verdict.platform_keeps
            print(verdict.line())
    copied = f", {passed} copied to {args.dest}" if args.dest is not None else ""
    print(f"{passed + failed} entries: {passed} passed, {failed} failed{copied}; "
          f"the platform would have dropped {dropped} of them silently")
    return FAILED if failed else OK


def _generate(args: argparse.Namespace) -> int:
    if args.count < 0:
        raise UsageProblem("--count must not be negative")
    if not args.curated and args.count == 0:
        raise UsageProblem("nothing to generate: give --count N (with --seed S) and/or --curated")
    model = load_model(args.model if args.model is not None else kit_model())
    if args.multiplier is not None:
        model = model.with_multiplier(args.multiplier)
    out = args.out if args.out is not None else kit_fixtures()
    requests = (goldens.curated_requests() if args.curated else []) + goldens.generated_requests(args.count, args.seed)
    written = goldens.write(goldens.plan(out, requests, model, write_model=args.multiplier is not None), args.force)
    print(f"wrote {len(requests)} golden pairs to {out} ({len(written)} files, multiplier {model.multiplier})")
    return OK


def _check_fixtures(args: argparse.Namespace) -> int:
    fixtures = args.fixtures if args.fixtures is not None else kit_fixtures()
    if not fixtures.is_dir():
        raise UsageProblem(f"{fixtures}: not a folder")
    model = goldens.model_for(fixtures, args.model)
    pairs, findings = goldens.check(fixtures, model)
    for finding in findings:
        print(finding.line())
    print(f"{pairs} golden pairs checked against the oracle (multiplier {model.multiplier}): "
          f"{'all equal' if not findings else f'{len(findings)} problems'}")
    return FAILED if findings or pairs == 0 else OK
