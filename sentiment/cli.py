"""The `sentiment` command: prepare data, train, evaluate, serve locally, predict, monitor,
compare a shadow model with production.

Only the parsers of the seven commands and their thin `_run_*` functions live here (hence
the length); each command's work is in a module of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

# Only what the parsers need: each command imports its own modules (torch, nltk, numpy,
# httpx...) when it runs, so that `sentiment --help` and `sentiment predict` start at once.
from contract import hyperparameters
from contract.capture import CAPTURE_PREFIX, DEFAULT_CAPTURE_PERCENT
from contract.feedback import (
    DEFAULT_FEEDBACK_PER_SOURCE,
    DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY,
    FEEDBACK_PREFIX,
)
from contract.files import EVALUATION_REPORT_FILE, MANIFEST_FILE, MODEL_ARTIFACT
from contract.layout import PROJECT_ROOT
from sentiment import imdb_source, local_stack, training_run

DEFAULT_DATA_DIR = Path("data/prepared")
DEFAULT_MODEL_DIR = Path("artifacts/model")
DEFAULT_CAPTURE_DIR = Path("artifacts") / CAPTURE_PREFIX
DEFAULT_FEEDBACK_DIR = Path("artifacts") / FEEDBACK_PREFIX
# The predictions feedback may name: DynamoDB's stand-in on this machine.
DEFAULT_PREDICTION_DATABASE = Path("artifacts/predictions.sqlite")
DEFAULT_CHECKPOINT_DIR = Path("artifacts/checkpoints")
DEFAULT_EVALUATION_DIR = Path("artifacts/evaluation")
DEFAULT_DRIFT_DIR = Path("artifacts/drift")
DEFAULT_COMPARE_DIR = Path("artifacts/compare")


def _add_prepare(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "prepare",
        help="turn the raw IMDB reviews into the training job's input channels",
        description="Preprocess the IMDB reviews into train/validation/test (and unlabeled) "
        "splits of word ids, with the vocabulary and a manifest.",
    )
    parser.add_argument(
        "--source",
        default=imdb_source.default_source(),
        help="the official archive URL (default), a local .tar.gz or an extracted aclImdb "
        f"directory; ${imdb_source.SOURCE_ENV} overrides the default",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_DATA_DIR, help="output directory")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=imdb_source.default_cache_dir(),
        help=f"where downloads and extractions are kept (${imdb_source.CACHE_ENV})",
    )
    # Unset options stay None and take PrepareOptions' defaults, which need nltk to compute.
    parser.add_argument("--vocab-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--validation-fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--keep-negations",
        action=argparse.BooleanOptionalAction,
        help="keep no/not/nor and n't words that NLTK's stopword list drops",
    )
    parser.add_argument(
        "--negation-scope",
        action=argparse.BooleanOptionalAction,
        help="read n't as not, and mark the words after a negation up to the end of its clause",
    )
    parser.add_argument(
        "--structure-words",
        action=argparse.BooleanOptionalAction,
        help="keep the stopwords that structure an opinion (but, too, very, only...)",
    )
    parser.add_argument(
        "--contrast-max-words",
        type=int,
        help="in a text of at most this many words, drop the clause a 'but' or an 'although' "
        "overrides (0: never; default 40)",
    )
    parser.add_argument(
        "--unlabeled",
        action=argparse.BooleanOptionalAction,
        help="also prepare the 50,000 unlabeled reviews (train/unsup) as their own split",
    )
    parser.add_argument("--workers", type=int)
    parser.add_argument(
        "--feedback",
        metavar="SOURCE",
        help="add the page's feedback to the training split only: a directory such as "
        f"{DEFAULT_FEEDBACK_DIR} (`sentiment up`), or the deployed s3://<artifact bucket>/"
        f"{FEEDBACK_PREFIX}; reviews already in a split are left out, with the reason in the "
        "manifest",
    )
    parser.add_argument(
        "--feedback-per-source",
        type=int,
        default=DEFAULT_FEEDBACK_PER_SOURCE,
        help="the most records one source (address) may add (%(default)s)",
    )
    parser.set_defaults(run=_run_prepare)


def _given(**options: object) -> dict[str, object]:
    return {name: value for name, value in options.items() if value is not None}


def _run_prepare(args: argparse.Namespace) -> None:
    import time

    from sentiment.prepare import FeedbackInput, PrepareOptions, prepare

    defaults = PrepareOptions()
    options = replace(
        defaults,
        **_given(
            vocabulary_size=args.vocab_size,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
            include_unlabeled=args.unlabeled,
            workers=args.workers,
        ),
        settings=replace(
            defaults.settings,
            **_given(
                keep_negations=args.keep_negations,
                negation_scope=args.negation_scope,
                contrast_max_words=args.contrast_max_words,
                max_length=args.max_length,
            ),
            **({} if args.structure_words in (None, True) else {"kept_stopwords": ()}),
        ),
    )
    root = imdb_source.resolve(args.source, args.cache_dir)
    started = time.perf_counter()
    feedback = FeedbackInput(args.feedback, args.feedback_per_source) if args.feedback else None
    manifest = prepare(root, args.output, options, imdb_source.recorded(args.source), feedback)
    elapsed = time.perf_counter() - started
    counts = {name: split["reviews"] for name, split in manifest["splits"].items()}
    print(
        f"Prepared {json.dumps(counts)} into {args.output} in {elapsed:.1f} s "
        f"(vocabulary {manifest['vocabulary_size']} ids)"
    )
    if "feedback" in manifest:
        print(_feedback_summary(manifest["feedback"]))


def _feedback_summary(intake: dict) -> str:
    left_out = ", ".join(f"{count} {reason}" for reason, count in intake["left_out"].items())
    return (
        f"Feedback from {intake['source']}: {intake['records']} records; {intake['joined']} "
        f"joined the training split ({intake['positive']} positive, {intake['negative']} "
        f"negative); left out: {left_out or 'none'} (manifest.json lists them)"
    )


def _add_train(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "train",
        help="train the model locally the way the SageMaker training job does",
        description="Run model/train.py from a fresh source tarball with SM_* variables, as "
        "the SageMaker training container does, and leave model.tar.gz in the model "
        "directory. The hyperparameters are cdk.json's sentiment:hyperparameters, which the "
        "cloud training job gets too; any other option is a hyperparameter passed to train.py "
        "after them, so it wins (e.g. --epochs 3; see `python model/train.py --help`).",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="prepared dataset")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=DEFAULT_CHECKPOINT_DIR,
        help="checkpoints of unfinished runs; an identical rerun resumes from them",
    )
    parser.add_argument(
        "--cdk-json",
        type=Path,
        default=PROJECT_ROOT / "cdk.json",
        help="where the hyperparameters come from; --no-cdk-json: train.py's defaults only",
    )
    parser.add_argument("--no-cdk-json", dest="cdk_json", action="store_const", const=None)
    parser.add_argument(
        "--serving-model",
        type=Path,
        metavar="PATH",
        help="a model.tar.gz to compare with, as the deployment gives the job the serving "
        "model: the promotion gate fails the run if the new model is worse (tolerance and "
        "force as hyperparameters: --promotion-tolerance 0.01, --force-promotion true)",
    )
    parser.set_defaults(run=_run_train, accepts_hyperparameters=True)


def _run_train(args: argparse.Namespace) -> None:
    configured = (
        hyperparameters.as_arguments(hyperparameters.cdk_json_hyperparameters(args.cdk_json))
        if args.cdk_json
        else []
    )
    artifact = training_run.train(
        args.data,
        args.model_dir,
        configured + args.hyperparameters,
        args.checkpoint_dir,
        serving_model=args.serving_model,
    )
    print(f"Model artifact: {artifact}")


def _add_evaluate(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "evaluate",
        help="score model.tar.gz on the test reviews through its own inference handlers",
        description="Send the official test reviews through the artifact's inference handlers "
        "(the endpoint's code path, preprocessing included) and report accuracy, precision, "
        "recall, F1, ROC AUC, the confusion matrix and throughput; write evaluation.json and "
        "evaluation.png.",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="prepared dataset")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL_DIR / MODEL_ARTIFACT,
        help="model.tar.gz, with the training report `sentiment train` leaves beside it",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_EVALUATION_DIR, help="for the report and figure"
    )
    parser.add_argument(
        "--source",
        help="where the raw test reviews come from (default: the source `sentiment prepare` "
        "read, from the prepared dataset's manifest)",
    )
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also fit TF-IDF unigrams+bigrams with logistic regression on the same "
        "training reviews, and report both",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="one request at a time, its length batches side by side on this many torch "
        "threads; 0 (default): a request per core in flight, one torch thread each",
    )
    parser.set_defaults(run=_run_evaluate)


def _prepared_source(data: Path) -> str:
    """The source `sentiment prepare` recorded in `data`'s manifest (older manifests have
    none: then the default source)."""
    from sentiment.prepare import read_manifest

    return read_manifest(data).get("source") or imdb_source.default_source()


def _run_evaluate(args: argparse.Namespace) -> None:
    from sentiment import evaluation, evaluation_report

    report = evaluation.evaluate(
        args.model,
        args.data,
        imdb_source.resolve(args.source or _prepared_source(args.data), args.cache_dir),
        args.output,
        baseline=args.baseline,
        threads=args.threads,
    )
    print(evaluation_report.summary_table(report))
    print(f"Wrote {args.output / EVALUATION_REPORT_FILE} and {args.output / report['figure']}")


def _add_up(subcommands: argparse._SubParsersAction) -> None:
    default_model = DEFAULT_MODEL_DIR / MODEL_ARTIFACT
    parser = subcommands.add_parser(
        "up",
        help="serve the whole app on this machine: web page, API and model endpoint",
        description="Start the endpoint emulator (the model), the API emulator (the prediction "
        "Lambda behind an emulated API Gateway) and the web page on localhost, and print the "
        "page's URL. A new model.tar.gz written over the served one is swapped in without "
        "downtime. Ctrl+C or SIGTERM stops everything.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        help=f"model.tar.gz to serve (default: {default_model}; when it does not exist yet, "
        "the IMDB reviews are prepared and a model trained first)",
    )
    parser.add_argument(
        "--host", default=local_stack.DEFAULT_HOST, help="address to listen on (%(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=local_stack.DEFAULT_PAGE_PORT,
        help="the web page's port (%(default)s)",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=local_stack.DEFAULT_API_PORT,
        help="the prediction API's port (%(default)s)",
    )
    parser.add_argument(
        "--endpoint-port",
        type=int,
        default=local_stack.DEFAULT_ENDPOINT_PORT,
        help="the endpoint emulator's port (%(default)s)",
    )
    parser.add_argument(
        "--capture-dir",
        type=Path,
        default=DEFAULT_CAPTURE_DIR,
        help="where the endpoint records what it is asked and answers, as SageMaker data "
        "capture does (%(default)s)",
    )
    parser.add_argument(
        "--capture-percent",
        type=float,
        default=DEFAULT_CAPTURE_PERCENT,
        help="the share of requests recorded; 0 records none (%(default)s)",
    )
    parser.add_argument(
        "--feedback-dir",
        type=Path,
        default=DEFAULT_FEEDBACK_DIR,
        help="where visitors' feedback on verdicts is kept, for `sentiment prepare --feedback` "
        "(%(default)s)",
    )
    parser.add_argument(
        "--prediction-database",
        type=Path,
        default=DEFAULT_PREDICTION_DATABASE,
        help="where each prediction is kept for the feedback that may name it, as DynamoDB "
        "keeps it in AWS (%(default)s)",
    )
    parser.add_argument(
        "--feedback-per-source-per-day",
        type=int,
        default=DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY,
        help="the feedback one address may give in a day; 0 takes none (%(default)s)",
    )
    parser.add_argument(
        "--gate-tolerance",
        type=float,
        default=local_stack.DEFAULT_GATE_TOLERANCE,
        help="refuse a new model.tar.gz whose validation accuracy or behaviour suite is worse "
        "than the serving model's by more than this (%(default)s)",
    )
    parser.add_argument(
        "--force-promotion",
        action="store_true",
        help="swap a new model in even when the promotion gate refuses it (logged)",
    )
    parser.add_argument(
        "--endpoint-mode",
        choices=["realtime", "serverless"],
        default="realtime",
        help="emulate this kind of endpoint (cdk.json's sentiment:endpointMode): its payload "
        "limit, and who records the traffic (%(default)s)",
    )
    parser.add_argument(
        "--shadow-model",
        type=Path,
        metavar="PATH",
        help="a model.tar.gz that answers a copy of each request beside the served model, as "
        "a SageMaker shadow variant: its answers are recorded and logged, never returned "
        "(`sentiment compare` reports the difference); real-time only",
    )
    parser.set_defaults(run=_run_up)


def _trained_default_model() -> Path:
    """The default model.tar.gz, prepared and trained first if there is none yet."""
    artifact = DEFAULT_MODEL_DIR / MODEL_ARTIFACT
    if artifact.is_file():
        return artifact
    print(f"No model at {artifact} yet: preparing the data and training one first.", flush=True)
    steps = [["train"]]
    if not (DEFAULT_DATA_DIR / MANIFEST_FILE).is_file():
        steps.insert(0, ["prepare"])
    for step in steps:
        status = main(step)
        if status:
            raise SystemExit(status)
    return artifact


def _feedback_settings(args: argparse.Namespace) -> dict[str, object]:
    if args.feedback_per_source_per_day <= 0:
        return {}
    return {
        "feedback_dir": args.feedback_dir.resolve(),
        "prediction_database": args.prediction_database.resolve(),
        "feedback_per_source_per_day": args.feedback_per_source_per_day,
    }


def _run_up(args: argparse.Namespace) -> None:
    if args.shadow_model is not None:
        if args.endpoint_mode == "serverless":
            raise ValueError("serverless endpoints support no shadow variant (--shadow-model)")
        if not args.shadow_model.is_file():
            raise FileNotFoundError(f"shadow model artifact not found: {args.shadow_model}")
    model = args.model or _trained_default_model()
    settings = local_stack.StackSettings(
        model=model.resolve(),
        host=args.host,
        port=args.port,
        api_port=args.api_port,
        endpoint_port=args.endpoint_port,
        capture_dir=args.capture_dir.resolve() if args.capture_percent > 0 else None,
        capture_percent=args.capture_percent,
        endpoint_mode=args.endpoint_mode,
        gate_tolerance=args.gate_tolerance,
        force_promotion=args.force_promotion,
        shadow_model=args.shadow_model and args.shadow_model.resolve(),
        **_feedback_settings(args),
    )
    status = local_stack.run(settings)
    if status:
        raise SystemExit(status)


def _add_predict(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "predict",
        help="score a review with the prediction API (the local one by default)",
        description="Send one review to the prediction API and print the verdict and score "
        "(the probability that the review is positive), with a note when the model had little "
        "to go on; with --explain, also the words that moved the verdict.",
    )
    parser.add_argument("review", help="the review text; - reads it from standard input")
    parser.add_argument(
        "--api-url",
        default=local_stack.DEFAULT_API_URL,
        help="the API's /predict URL, e.g. the deployed stack's PredictUrl output "
        "(default: %(default)s, started by `sentiment up`)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also say why: the review with its strongest words marked [+word] (toward "
        "positive) or [-word] (toward negative), coloured on a terminal unless NO_COLOR is set, "
        "those words with their contributions, and the words the model did not read",
    )
    parser.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    from sentiment import prediction_client

    review = sys.stdin.read() if args.review == "-" else args.review
    try:
        verdict = prediction_client.predict(args.api_url, review, explain=args.explain)
    except prediction_client.PredictionError as error:
        print(f"sentiment predict: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(verdict)
    if verdict.explanation is not None:
        colour = prediction_client.wants_colour(sys.stdout)
        print()
        print(prediction_client.explanation_text(review, verdict.explanation, colour))


def _add_monitor(subcommands: argparse._SubParsersAction) -> None:
    from contract.drift import EXIT_DRIFT, Thresholds

    defaults = Thresholds()
    parser = subcommands.add_parser(
        "monitor",
        help="compare captured traffic with the model's drift baseline",
        description="Read the captured traffic (and the page's feedback) in a window with the "
        "artifact's own preprocessing and compare it with its drift baseline: PSI of length "
        "and score, unknown words, low-confidence verdicts, accuracy on feedback. Writes "
        f"drift_report.json and drift_report.html and exits {EXIT_DRIFT} when a threshold is "
        "crossed (2 on bad input, such as too few records in the window). With --rebaseline, "
        "writes a baseline taken from the window's traffic instead, for later --baseline runs.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL_DIR / MODEL_ARTIFACT,
        help="model.tar.gz, whose preprocessing reads the reviews and whose baseline they are "
        "compared with (%(default)s)",
    )
    _add_capture_window(parser)
    parser.add_argument(
        "--feedback",
        default=str(DEFAULT_FEEDBACK_DIR),
        help="feedback records: a directory or s3://bucket/feedback (%(default)s)",
    )
    parser.add_argument("--baseline", type=Path, help="a baseline file from --rebaseline")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DRIFT_DIR, help="for the report and page (%(default)s)"
    )
    parser.add_argument(
        "--rebaseline",
        action="store_true",
        help="write the window's traffic as a baseline (drift_baseline.json in --out)",
    )
    parser.add_argument(
        "--all-versions",
        action="store_true",
        help="count every model's answers, not only the baseline's model's",
    )
    for name, value in defaults.to_json().items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(value),
            default=value,
            help="threshold (%(default)s; contract/drift.py explains each)",
        )
    parser.set_defaults(run=_run_monitor)


def _run_monitor(args: argparse.Namespace) -> None:
    from contract.drift import EXIT_DRIFT, Thresholds
    from contract.drift_sources import Window, parse_time
    from sentiment import monitor

    options = monitor.MonitorOptions(
        model=args.model,
        capture=args.capture,
        feedback=args.feedback,
        window=Window(
            since=parse_time(args.since) if args.since else None,
            until=parse_time(args.until) if args.until else None,
        ),
        thresholds=Thresholds(**{name: getattr(args, name) for name in Thresholds().to_json()}),
        baseline=args.baseline,
        all_versions=args.all_versions,
    )
    if args.rebaseline:
        path = monitor.write_baseline(monitor.rebaseline(options), args.out)
        print(f"Wrote {path}; compare later traffic with it: sentiment monitor --baseline {path}")
        return
    report = monitor.monitor(options)
    document, page = monitor.write_report(report, args.out)
    print(monitor.summary(report))
    print(f"Wrote {document} and {page}")
    if report["crossed"]:
        raise SystemExit(EXIT_DRIFT)


def _add_capture_window(parser: argparse.ArgumentParser) -> None:
    """Where captured traffic is read from, and the window of it to read."""
    parser.add_argument(
        "--capture",
        default=str(DEFAULT_CAPTURE_DIR),
        help="captured traffic: a directory or s3://bucket/capture (%(default)s)",
    )
    parser.add_argument("--since", help="start of the window, a UTC date or ISO time")
    parser.add_argument("--until", help="end of the window, exclusive (default: now)")


def _add_compare(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "compare",
        help="compare the shadow model's answers with production's on the same requests",
        description="Pair each request's captured answers from the production and the shadow "
        "variant (by inference id, else event id) and report how often the verdicts agree, "
        "how far the scores moved, each model's low-confidence share and, from the endpoint "
        "emulator's log or CloudWatch, its latency. Writes compare_report.json; exits 2 when "
        "no request was answered by both.",
    )
    _add_capture_window(parser)
    parser.add_argument("--endpoint", help="only this endpoint's records (default: all)")
    parser.add_argument(
        "--latency-log",
        type=Path,
        help="the log of `sentiment up --shadow-model` (its standard error), for both models' "
        "latencies; captured records carry none",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_COMPARE_DIR, help="for the report (%(default)s)"
    )
    parser.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> None:
    from contract.drift_sources import Window, parse_time
    from sentiment import compare

    report = compare.compare(
        compare.CompareOptions(
            capture=args.capture,
            window=Window(
                since=parse_time(args.since) if args.since else None,
                until=parse_time(args.until) if args.until else None,
            ),
            endpoint=args.endpoint,
            latency_log=args.latency_log,
        )
    )
    path = compare.write_report(report, args.out)
    print(compare.summary(report))
    print(f"Wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__)
    subcommands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    _add_prepare(subcommands)
    _add_train(subcommands)
    _add_evaluate(subcommands)
    _add_up(subcommands)
    _add_predict(subcommands)
    _add_monitor(subcommands)
    _add_compare(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_hyperparameters", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.hyperparameters = extra
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, training_run.TrainingFailed) as error:
        print(f"sentiment {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
