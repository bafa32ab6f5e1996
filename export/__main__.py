"""``python -m export``: write a new SavedModel version (and TFLite file) of the threshold filter."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DESCRIPTION = """\
Export the threshold filter (1 where x < low or x > high, else 0) for TF Serving.

Writes <models-dir>/<model-name>/<version>/ (SavedModel with signatures serving_default,
compact and bounds, plus warmup requests) and <models-dir>/<model-name>-<version>.tflite.
A version is never overwritten; a failed or interrupted export leaves nothing behind."""


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _bound(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # Export parses its own flags: it imports nothing of ours (the other CLIs share client.cli_options).
    # Flag names are theirs: --models-dir and --model-name (--model-dir and --name: older spellings).
    parser = argparse.ArgumentParser(
        prog="python -m export", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--low",
        type=_bound,
        default=None,
        help="lower bound of the pass band; values below it map to 1 (default -0.1)",
    )
    parser.add_argument(
        "--high",
        type=_bound,
        default=None,
        help="upper bound of the pass band; values above it map to 1 (default 0.1)",
    )
    parser.add_argument(
        "--models-dir",
        dest="model_dir",
        type=Path,
        default=Path(os.environ.get("MODEL_DIR", "").strip() or "models"),
        help="directory holding model base paths (env MODEL_DIR, default models)",
    )
    parser.add_argument(
        "--model-dir", dest="model_dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--model-name",
        dest="name",
        default=os.environ.get("MODEL_NAME", "").strip() or "threshold",
        help="model name: the base path's directory name and the name clients "
        "ask for (env MODEL_NAME, default threshold)",
    )
    parser.add_argument("--name", dest="name", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--version",
        type=_version,
        default=None,
        help="integer version to write (default: one past the highest existing)",
    )
    parser.add_argument("--no-tflite", action="store_true", help="skip the TFLite conversion")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.name or "/" in args.name or args.name.startswith("."):
        print(f"error: --model-name must be a plain directory name, got {args.name!r}", file=sys.stderr)
        return 2
    from export.bounds import DEFAULT_HIGH, DEFAULT_LOW, InvalidBounds, validate_bounds
    from export.layout import ExportError, require_free_version

    try:  # refuse bad input before paying for the TensorFlow import
        low, high = validate_bounds(
            DEFAULT_LOW if args.low is None else args.low, DEFAULT_HIGH if args.high is None else args.high
        )
        if args.version is not None:
            require_free_version(args.model_dir / args.name, args.version)
    except (InvalidBounds, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from export.quiet_tensorflow import import_tensorflow

    import_tensorflow()
    from export.savedmodel import export_model
    from export.tflite import tflite_path, write_tflite

    try:
        print(f"exporting {args.name} (low={low}, high={high}) ...", flush=True)
        result = export_model(low, high, args.model_dir, args.name, args.version)
        print(f"wrote SavedModel version {result.version}: {result.version_dir}")
        print(f"  signatures: {', '.join(result.signatures)}")
        print(f"  warmup: {result.version_dir / 'assets.extra' / 'tf_serving_warmup_requests'}")
        if not args.no_tflite:
            path = write_tflite(low, high, tflite_path(args.model_dir, args.name, result.version))
            print(f"wrote TFLite (builtins only, checked in the interpreter): {path}")
    except (InvalidBounds, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write under {args.model_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
